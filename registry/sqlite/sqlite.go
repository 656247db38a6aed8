//go:build cgo

package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/mattn/go-sqlite3"

	"github.com/nsfd/nsfd/internal/sqlstore"
	"github.com/nsfd/nsfd/registry"
)

func init() { registry.Register(registry.TypeSQLite, registryDriver{}) }

// registryDriver opens SQLite registries.
type registryDriver struct{}

var _ registry.Driver = registryDriver{}

func (registryDriver) Open(ctx context.Context, path string) (registry.Registry, error) {
	return open(ctx, path)
}

var dialect = &sqlstore.Dialect{
	Now:    `CAST(round(unixepoch('subsec') * 1000) AS INTEGER)`,
	AutoID: `INTEGER PRIMARY KEY AUTOINCREMENT`,
	IsForeignKey: func(err error) bool {
		var e sqlite3.Error
		return errors.As(err, &e) && e.ExtendedCode == sqlite3.ErrConstraintForeignKey
	},
	Scrub:  func(err error) error { return err },
	Listen: listen,
}

// open opens (creating if need be) the database file at path. The path
// is handed to SQLite as is, so it may not contain '?' (which would start
// parameters); ":memory:" and file: URIs are refused, since the registry is a
// file that several processes share.
func open(ctx context.Context, path string) (registry.Registry, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("registry: sqlite: %q is not a database file path", path)
	}
	if err := createFile(path); err != nil {
		return nil, fmt.Errorf("registry: sqlite: %w", err)
	}
	params := fmt.Sprintf("?_busy_timeout=%d&_journal_mode=WAL&_foreign_keys=on&_synchronous=NORMAL",
		BusyTimeout.Milliseconds())
	w := sql.OpenDB(sqliteConnector{path + params + "&_txlock=immediate"})
	// One writer connection: this process's writes queue in database/sql
	// rather than contend for SQLite's lock; other processes wait on the
	// busy timeout.
	w.SetMaxOpenConns(1)
	r := sql.OpenDB(sqliteConnector{path + params + "&_query_only=on"})
	n := max(2, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s, err := sqlstore.New(ctx, dialect, w, r, true)
	if err != nil {
		return nil, fmt.Errorf("registry: sqlite %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("registry: sqlite: %w", err)
	}
	return &db{Store: s, path: path, file: fi}, nil
}

// db is a SQLite registry: the shared store, and the file it opened.
type db struct {
	*sqlstore.Store
	path string
	file os.FileInfo // the database file as opened
}

var _ registry.Registry = (*db)(nil)

// Heartbeat first checks that the database file at the path is still the
// one opened: a deleted or replaced file would leave this handle writing
// to a database nobody else sees. The check is one stat(2) per heartbeat.
func (d *db) Heartbeat(ctx context.Context, node string, masterPID int) error {
	fi, err := os.Stat(d.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("heartbeat: %s is gone: %w", d.path, registry.ErrReplaced)
	case err == nil && !os.SameFile(fi, d.file):
		return fmt.Errorf("heartbeat: %s is another file: %w", d.path, registry.ErrReplaced)
	}
	return d.Store.Heartbeat(ctx, node, masterPID)
}

// sqliteDriver keeps the -wal and -shm files when the last connection closes
// (SQLITE_FCNTL_PERSIST_WAL), so that a reader without write access to the
// directory (a worker's client in the registry file's group, resolving a
// name) can still read the database while no master has it open.
var sqliteDriver = &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
	return c.SetFileControlInt("main", sqlite3.SQLITE_FCNTL_PERSIST_WAL, 1)
}}

// sqliteConnector opens connections to one DSN through sqliteDriver.
type sqliteConnector struct{ dsn string }

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	return sqliteDriver.Open(c.dsn)
}
func (c sqliteConnector) Driver() driver.Driver { return sqliteDriver }

// createFile creates the database file with FileMode and its directory with
// DirMode, whatever the umask, unless they exist. A -wal or -shm file left
// beside a database file that did not exist belonged to a deleted database:
// it is removed, lest SQLite replay it into the new one.
func createFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, DirMode); err != nil {
			return err
		}
		if err := os.Chmod(dir, DirMode); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Chmod(FileMode)
	for _, journal := range []string{path + "-wal", path + "-shm"} {
		if rerr := os.Remove(journal); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return errors.Join(err, f.Close())
}
