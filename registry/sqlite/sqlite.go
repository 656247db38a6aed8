package registry

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
	"time"

	"github.com/mattn/go-sqlite3"
)

// SQLite settings. Several processes open the same file: the master writes,
// `nsfd resolve` and clients read. WAL lets readers run beside the writer;
// a writer waits up to SQLiteBusyTimeout for another's transaction instead of
// failing with SQLITE_BUSY; write transactions begin IMMEDIATE, taking the
// write lock up front, so a transaction never has to upgrade a read lock (the
// case where SQLite must fail at once rather than wait).
const (
	// SQLiteBusyTimeout is how long a write waits for another's lock.
	SQLiteBusyTimeout = 5 * time.Second
	// SQLiteFileMode is the mode of a database file the registry creates;
	// SQLite gives its -wal and -shm files the same.
	SQLiteFileMode fs.FileMode = 0o640
	// SQLiteDirMode is the mode of a database directory the registry
	// creates.
	SQLiteDirMode fs.FileMode = 0o750
)

var sqliteDialect = &dialect{
	now:    `CAST(round(unixepoch('subsec') * 1000) AS INTEGER)`,
	autoID: `INTEGER PRIMARY KEY AUTOINCREMENT`,
	isForeignKey: func(err error) bool {
		var e sqlite3.Error
		return errors.As(err, &e) && e.ExtendedCode == sqlite3.ErrConstraintForeignKey
	},
	scrub: func(err error) error { return err },
}

// openSQLite opens (creating if need be) the database file at path. The path
// is handed to SQLite as is, so it may not contain '?' (which would start
// parameters); ":memory:" and file: URIs are refused, since the registry is a
// file that several processes share.
func openSQLite(ctx context.Context, path string) (Registry, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("registry: sqlite: %q is not a database file path", path)
	}
	if err := createFile(path); err != nil {
		return nil, fmt.Errorf("registry: sqlite: %w", err)
	}
	params := fmt.Sprintf("?_busy_timeout=%d&_journal_mode=WAL&_foreign_keys=on&_synchronous=NORMAL",
		SQLiteBusyTimeout.Milliseconds())
	w := sql.OpenDB(sqliteConnector{path + params + "&_txlock=immediate"})
	// One writer connection: this process's writes queue in database/sql
	// rather than contend for SQLite's lock; other processes wait on the
	// busy timeout.
	w.SetMaxOpenConns(1)
	r := sql.OpenDB(sqliteConnector{path + params + "&_query_only=on"})
	n := max(2, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s, err := newStore(ctx, sqliteDialect, w, r, true)
	if err != nil {
		return nil, fmt.Errorf("registry: sqlite %s: %w", path, err)
	}
	return s, nil
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

// createFile creates the database file with SQLiteFileMode and its directory
// with SQLiteDirMode, whatever the umask, unless they exist.
func createFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, SQLiteDirMode); err != nil {
			return err
		}
		if err := os.Chmod(dir, SQLiteDirMode); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, SQLiteFileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Chmod(SQLiteFileMode)
	return errors.Join(err, f.Close())
}
