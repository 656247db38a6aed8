//go:build cgo

package sqlite

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	"github.com/nsfd/nsfd/internal/sqlstore"
)

// listen is the dialect's Listen. SQLite has no notifications between
// processes, but every commit writes the database's -wal file: it watches
// the database's directory (inotify, through fsnotify) and calls wake("")
// when the database or its WAL is written. channel is not used: every
// writer of the database is heard.
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
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("listen: the watch ended")
			}
			if (ev.Name == wal || ev.Name == file) && ev.Op&(fsnotify.Write|fsnotify.Create) != 0 {
				wake("")
			}
		case _, ok := <-w.Errors:
			if !ok {
				return errors.New("listen: the watch ended")
			}
			wake("") // an overflowed queue may have lost a write
		}
	}
}
