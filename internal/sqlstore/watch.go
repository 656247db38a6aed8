package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// RegistryChannel is the channel Register, SetState, Unregister and the
// purges announce their changes on (the dialect's Notify: PostgreSQL's
// NOTIFY), with the daemon's name as payload, or registry.AnyName for a
// purge, which may touch any name.
const RegistryChannel = "nsfd_registry"

var (
	_ registry.Watcher = (*Store)(nil)
	_ registry.Clock   = (*Store)(nil)
)

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// boolInt is b as the INTEGER column stores it.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// announce tells the registry's watchers, in tx, that the daemons called
// name changed; a no-op for an engine without notifications (SQLite's
// watchers see the file change).
func (s *Store) announce(ctx context.Context, tx *sql.Tx, name string) error {
	if s.q.notify == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.q.notify, RegistryChannel, name)
	return err
}

// changeTx runs one change of the daemons called name: in a transaction
// with its announcement when the engine has notifications, else as a
// single statement (SQLite's writes stay one round trip).
func (s *Store) changeTx(ctx context.Context, name string, fn func(execer) error) error {
	if s.q.notify == "" {
		return fn(s.w)
	}
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.announce(ctx, tx, name)
	})
}

// purge runs a DELETE of daemons and, if it deleted any, announces a
// change of any name.
func (s *Store) purge(ctx context.Context, q string, args ...any) (int, error) {
	var n int
	err := s.changeTx(ctx, registry.AnyName, func(exec execer) error {
		var err error
		n, err = Affected(exec.ExecContext(ctx, q, args...))
		if err == nil && n == 0 {
			return errNothing // nothing to announce: roll back the empty transaction
		}
		return err
	})
	if err == errNothing {
		return 0, nil
	}
	return n, err
}

// errNothing ends a purge's transaction that deleted nothing.
var errNothing = errors.New("nothing purged")

// Watch is registry.Watcher's: the dialect's Listen on RegistryChannel.
// Without a Listen it fails at once.
func (s *Store) Watch(ctx context.Context, ready func(), changed func(name string)) error {
	if s.d.Listen == nil {
		return fmt.Errorf("watch: the registry cannot announce changes")
	}
	return s.d.Listen(ctx, s, RegistryChannel, ready, changed)
}

// Now is registry.Clock's: the database's clock, the one that stamps
// heartbeats.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var ms int64
	if err := s.r.QueryRowContext(ctx, s.q.now).Scan(&ms); err != nil {
		return time.Time{}, s.Fail("read", "the registry's clock", err)
	}
	return time.UnixMilli(ms), nil
}
