//go:build cgo

package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nsfd/nsfd/internal/sqlstore"
)

// settleWake is how long after the last write of a burst listen wakes the
// waiters once more (see listen).
const settleWake = 20 * time.Millisecond

// listen is the dialect's Listen. SQLite has no notifications between
// processes, but every commit writes the database's -wal file: it watches
// the database's directory (inotify, through fsnotify) and calls wake("")
// when the database or its WAL is written. channel is not used: every
// writer of the database is heard.
//
// The write that inotify reports is not yet the commit: a writer appends
// its frames to the WAL, then publishes the commit in the -shm index, a
// memory mapping whose writes raise no event. A reader woken by the WAL
// write alone may still see the old snapshot and sleep again with nothing
// left to wake it, so every burst of writes also wakes once more
// settleWake after its last event, when the commit is long published.
func listen(ctx context.Context, s *sqlstore.Store, _ string, listening func(), wake func(string)) error {
	var file string
	if err := s.Reader().QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		return err
	}
	if file == "" {
		return errors.New("listen: the database has no file")
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(file)); err != nil {
		return err
	}
	listening()
	wal := file + "-wal"
	settle := time.NewTimer(settleWake)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-settle.C:
			wake("") // the commit of the last burst is published by now
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("listen: the watch ended")
			}
			if (ev.Name == wal || ev.Name == file) && ev.Op&(fsnotify.Write|fsnotify.Create) != 0 {
				wake("")
				settle.Reset(settleWake)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return errors.New("listen: the watch ended")
			}
			wake("") // an overflowed queue may have lost a write
		}
	}
}
