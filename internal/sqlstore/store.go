package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// Store implements registry.Registry over database/sql for both engines; a
// Dialect holds what differs. Other tables of the registry's database (the
// queue's spool) use its connections, dialect and helpers.
type Store struct {
	d *Dialect
	w *sql.DB // writes; for SQLite one connection, transactions BEGIN IMMEDIATE
	r *sql.DB // reads; for PostgreSQL the same pool as w
	q queries
	// resolve is q.resolve prepared on r, for engines where a prepared
	// statement pays (SQLite); nil otherwise (pgx caches statements).
	resolve *sql.Stmt
	// turn rotates the order of the other nodes in Resolve; it starts at
	// a random value so that short-lived clients spread too.
	turn atomic.Uint64

	closeOnce sync.Once
	closeErr  error
	onClose   []func() error
}

var _ registry.Registry = (*Store)(nil)

// queries is the SQL of every operation, rendered for the store's dialect.
type queries struct {
	upsertDaemon, deleteEndpoints, insertEndpoint, setState, unregister  string
	upsertWorker, deleteWorker, setLastExit, daemonExists, deleteWorkers string
	workers, heartbeat, resolve, list, purgeNode, purgeStale             string
	// notify announces a change on a channel (the dialect's Notify); ""
	// if the engine has none.
	notify, now string
}

func newQueries(d *Dialect) queries {
	return queries{
		upsertDaemon: d.Render(`INSERT INTO daemons
			(node, name, state, encoding, master_pid, config_hash, started_at, heartbeat_at)
			VALUES (?, ?, ?, ?, ?, ?, COALESCE(?, {{now}}), {{now}})
			ON CONFLICT (node, name) DO UPDATE SET
				state = excluded.state, encoding = excluded.encoding, master_pid = excluded.master_pid,
				config_hash = excluded.config_hash, started_at = excluded.started_at,
				heartbeat_at = excluded.heartbeat_at`),
		deleteEndpoints: d.Render(`DELETE FROM endpoints WHERE node = ? AND daemon = ?`),
		insertEndpoint: d.Render(`INSERT INTO endpoints (node, daemon, seq, proto, address, tls, server_name, unhealthy)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		setState: d.Render(`UPDATE daemons SET state = ? WHERE node = ? AND name = ?`),
		// endpoints and workers follow by ON DELETE CASCADE.
		unregister: d.Render(`DELETE FROM daemons WHERE node = ? AND name = ?`),
		upsertWorker: d.Render(`INSERT INTO workers
			(node, daemon, pid, slot, state, started_at, requests, last_exit)
			VALUES (?, ?, ?, ?, ?, COALESCE(?, {{now}}), ?, ?)
			ON CONFLICT (node, daemon, pid) DO UPDATE SET
				slot = excluded.slot, state = excluded.state, started_at = excluded.started_at,
				requests = excluded.requests, last_exit = excluded.last_exit`),
		deleteWorker:  d.Render(`DELETE FROM workers WHERE node = ? AND daemon = ? AND pid = ?`),
		setLastExit:   d.Render(`UPDATE daemons SET last_exit = ? WHERE node = ? AND name = ?`),
		daemonExists:  d.Render(`SELECT count(*) FROM daemons WHERE node = ? AND name = ?`),
		deleteWorkers: d.Render(`DELETE FROM workers WHERE node = ? AND daemon = ?`),
		workers: d.Render(`SELECT pid, slot, state, started_at, requests, last_exit
			FROM workers WHERE node = ? AND daemon = ? ORDER BY slot, pid`),
		heartbeat: d.Render(`UPDATE daemons SET heartbeat_at = {{now}} WHERE node = ? AND master_pid = ?`),
		// One query, on the daemons_by_name index and the endpoints'
		// primary key; the last column tells fresh from stale rows, so
		// that registry.ErrStale costs no second query.
		resolve: d.Render(`SELECT d.node, e.proto, e.address, d.encoding, e.tls, e.server_name, e.unhealthy, d.master_pid, d.heartbeat_at >= {{now}} - ?
			FROM daemons d JOIN endpoints e ON e.node = d.node AND e.daemon = d.name
			WHERE d.name = ? AND d.state = '` + registry.StateRunning + `'
			ORDER BY d.node, e.seq`),
		list: d.Render(`SELECT d.node, d.name, d.state, d.encoding, d.master_pid, d.config_hash,
				d.started_at, d.heartbeat_at, d.last_exit, e.proto, e.address, e.tls, e.server_name, e.unhealthy
			FROM daemons d LEFT JOIN endpoints e ON e.node = d.node AND e.daemon = d.name
			ORDER BY d.name, d.node, e.seq`),
		purgeNode:  d.Render(`DELETE FROM daemons WHERE node = ?`),
		purgeStale: d.Render(`DELETE FROM daemons WHERE heartbeat_at < {{now}} - ?`),
		notify:     renderIf(d, d.Notify),
		now:        d.Render(`SELECT {{now}}`),
	}
}

// renderIf renders q for d, or returns "" for an empty q.
func renderIf(d *Dialect, q string) string {
	if q == "" {
		return ""
	}
	return d.Render(q)
}

// New migrates the schema and prepares the store: w is the pool for
// writes, r for reads (the same pool, or a read-only one), prepare asks for
// Resolve's statement to be prepared on r. It closes w and r (and runs
// onClose) if it fails.
func New(ctx context.Context, d *Dialect, w, r *sql.DB, prepare bool, onClose ...func() error) (*Store, error) {
	s := &Store{d: d, w: w, r: r, q: newQueries(d), onClose: onClose}
	s.turn.Store(rand.Uint64())
	if err := migrate(ctx, w, d); err != nil {
		s.Close()
		return nil, d.Scrub(err)
	}
	if prepare {
		stmt, err := r.PrepareContext(ctx, s.q.resolve)
		if err != nil {
			s.Close()
			return nil, d.Scrub(fmt.Errorf("prepare: %w", err))
		}
		s.resolve = stmt
	}
	return s, nil
}

// Of returns the Store under reg, a registry a driver of this module opened:
// ok is false for any other (a test's fake).
func Of(reg registry.Registry) (s *Store, ok bool) {
	if h, ok := reg.(interface{ SQLStore() *Store }); ok {
		return h.SQLStore(), true
	}
	return nil, false
}

// SQLStore returns s; a driver's own registry type that embeds a Store
// inherits it, so that Of finds the Store.
func (s *Store) SQLStore() *Store { return s }

// Dialect returns the store's dialect.
func (s *Store) Dialect() *Dialect { return s.d }

// Writer returns the pool for writes (for SQLite, one connection whose
// transactions begin IMMEDIATE).
func (s *Store) Writer() *sql.DB { return s.w }

// Reader returns the pool for reads (for SQLite, read-only connections).
func (s *Store) Reader() *sql.DB { return s.r }

// millis is t in unix milliseconds, or NULL (the database's now) if t is zero.
func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// InTx runs fn in a write transaction.
func (s *Store) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Fail wraps err with op and what it applies to, and scrubs it.
func (s *Store) Fail(op, what string, err error) error {
	return s.d.Scrub(fmt.Errorf("%s %s: %w", op, what, err))
}

func validProto(p string) bool {
	switch p {
	case registry.ProtoTCP, registry.ProtoUDP, registry.ProtoUnix, registry.ProtoUnixgram:
		return true
	}
	return false
}

func (s *Store) Register(ctx context.Context, d registry.Daemon) error {
	what := d.Node + "/" + d.Name
	if d.Node == "" || d.Name == "" {
		return fmt.Errorf("register %q: node and name are required", what)
	}
	for _, e := range d.Endpoints {
		if !validProto(e.Proto) || e.Address == "" {
			return fmt.Errorf("register %s: bad endpoint %q %q (want tcp, udp, unix or unixgram and an address)",
				what, e.Proto, e.Address)
		}
	}
	if d.State == "" {
		d.State = registry.StateRunning
	}
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q.upsertDaemon, d.Node, d.Name, d.State, d.Encoding, d.MasterPID,
			d.ConfigHash, millis(d.StartedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteEndpoints, d.Node, d.Name); err != nil {
			return err
		}
		for i, e := range d.Endpoints {
			if _, err := tx.ExecContext(ctx, s.q.insertEndpoint, d.Node, d.Name, i, e.Proto, e.Address,
				boolInt(e.TLS), e.ServerName, boolInt(e.Unhealthy)); err != nil {
				return err
			}
		}
		return s.announce(ctx, tx, d.Name)
	})
	if err != nil {
		return s.Fail("register", what, err)
	}
	return nil
}

// MustAffect turns "no row changed" into registry.ErrNotFound.
func MustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return registry.ErrNotFound
	}
	return nil
}

func (s *Store) SetState(ctx context.Context, node, name, state string) error {
	err := s.changeTx(ctx, name, func(exec execer) error {
		return MustAffect(exec.ExecContext(ctx, s.q.setState, state, node, name))
	})
	if err != nil {
		return s.Fail("set state of", node+"/"+name, err)
	}
	return nil
}

func (s *Store) Unregister(ctx context.Context, node, name string) error {
	err := s.changeTx(ctx, name, func(exec execer) error {
		_, err := exec.ExecContext(ctx, s.q.unregister, node, name)
		return err
	})
	if err != nil {
		return s.Fail("unregister", node+"/"+name, err)
	}
	return nil
}

func (s *Store) WorkerStarted(ctx context.Context, w registry.Worker) error {
	if w.State == "" {
		w.State = registry.WorkerStarting
	}
	_, err := s.w.ExecContext(ctx, s.q.upsertWorker, w.Node, w.Daemon, w.PID, w.Slot, w.State,
		millis(w.StartedAt), w.Requests, w.LastExit)
	if err != nil {
		if s.d.IsForeignKey(err) {
			err = registry.ErrNotFound
		}
		return s.Fail("worker started:", fmt.Sprintf("%s/%s pid %d", w.Node, w.Daemon, w.PID), err)
	}
	return nil
}

func (s *Store) WorkerExited(ctx context.Context, node, daemon string, pid int, lastExit string) error {
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		if err := MustAffect(tx.ExecContext(ctx, s.q.setLastExit, lastExit, node, daemon)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q.deleteWorker, node, daemon, pid)
		return err
	})
	if err != nil {
		return s.Fail("worker exited:", fmt.Sprintf("%s/%s pid %d", node, daemon, pid), err)
	}
	return nil
}

func (s *Store) SyncWorkers(ctx context.Context, node, daemon string, ws []registry.Worker) error {
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q.daemonExists, node, daemon).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return registry.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteWorkers, node, daemon); err != nil {
			return err
		}
		if len(ws) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, s.q.upsertWorker)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, w := range ws {
			if w.State == "" {
				w.State = registry.WorkerStarting
			}
			if _, err := stmt.ExecContext(ctx, node, daemon, w.PID, w.Slot, w.State, millis(w.StartedAt),
				w.Requests, w.LastExit); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if s.d.IsForeignKey(err) {
			err = registry.ErrNotFound
		}
		return s.Fail("sync workers of", node+"/"+daemon, err)
	}
	return nil
}

func (s *Store) Workers(ctx context.Context, node, daemon string) ([]registry.Worker, error) {
	rows, err := s.r.QueryContext(ctx, s.q.workers, node, daemon)
	if err != nil {
		return nil, s.Fail("workers of", node+"/"+daemon, err)
	}
	defer rows.Close()
	var ws []registry.Worker
	for rows.Next() {
		w := registry.Worker{Node: node, Daemon: daemon}
		var started int64
		if err := rows.Scan(&w.PID, &w.Slot, &w.State, &started, &w.Requests, &w.LastExit); err != nil {
			return nil, s.Fail("workers of", node+"/"+daemon, err)
		}
		w.StartedAt = time.UnixMilli(started)
		ws = append(ws, w)
	}
	if err := rows.Err(); err != nil {
		return nil, s.Fail("workers of", node+"/"+daemon, err)
	}
	return ws, nil
}

func (s *Store) Heartbeat(ctx context.Context, node string, masterPID int) error {
	if err := MustAffect(s.w.ExecContext(ctx, s.q.heartbeat, node, masterPID)); err != nil {
		return s.Fail("heartbeat", fmt.Sprintf("of node %s master %d", node, masterPID), err)
	}
	return nil
}

func (s *Store) PurgeNode(ctx context.Context, node string) (int, error) {
	n, err := s.purge(ctx, s.q.purgeNode, node)
	if err != nil {
		return 0, s.Fail("purge node", node, err)
	}
	return n, nil
}

func (s *Store) PurgeStale(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("purge stale: age %v must be positive", olderThan)
	}
	n, err := s.purge(ctx, s.q.purgeStale, olderThan.Milliseconds())
	if err != nil {
		return 0, s.Fail("purge stale", "daemons", err)
	}
	return n, nil
}

// Affected returns how many rows res changed, or err.
func Affected(res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.resolve != nil {
			errs = append(errs, s.resolve.Close())
		}
		if s.r != s.w {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		for _, f := range s.onClose {
			errs = append(errs, f())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
