// Package sqlite is the SQLite driver of the registry: importing it makes
// registry.Open accept type "sqlite", a database file that the master,
// `nsfd resolve` and clients on one host share.
//
//	import _ "github.com/nsfd/nsfd/registry/sqlite"
//
// It runs SQLite through cgo (mattn/go-sqlite3). In a program built with
// CGO_ENABLED=0 the driver is still registered, and opening a SQLite
// registry fails with ErrNoCgo, which says what to do instead: the choice
// of registry is the configuration's, so it is an error at open time, never
// a compile error.
//
// Several processes open the same file. The master writes; `nsfd resolve`
// and clients read. WAL lets readers run beside the writer; a writer waits
// up to BusyTimeout for another's transaction instead of failing with
// SQLITE_BUSY; write transactions begin IMMEDIATE, taking the write lock up
// front, so a transaction never has to upgrade a read lock (the case where
// SQLite must fail at once rather than wait). Each Heartbeat checks that the
// file at the path is still the one opened, and fails with
// registry.ErrReplaced once it was deleted or replaced, so the master opens
// it anew and registers its daemons again. Changes to the queue's spool are
// seen by other processes through inotify on the file's directory (a commit
// writes the -wal file).
package sqlite

import (
	"errors"
	"io/fs"
	"time"
)

// SQLite settings.
const (
	// BusyTimeout is how long a write waits for another's lock.
	BusyTimeout = 5 * time.Second
	// FileMode is the mode of a database file the registry creates;
	// SQLite gives its -wal and -shm files the same.
	FileMode fs.FileMode = 0o640
	// DirMode is the mode of a database directory the registry creates.
	DirMode fs.FileMode = 0o750
)

// ErrNoCgo is the error of opening a SQLite registry in a program built
// without cgo.
var ErrNoCgo = errors.New("registry: sqlite: built without cgo: use type = postgres, or build with CGO_ENABLED=1")
