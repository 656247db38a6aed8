package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// How WaitJob waits. It registers the caller as a waiter for the job, makes
// sure the store's watcher runs, reads the job, and then sleeps until
// something may have changed it:
//
//   - In this process, ModJob and DelJob wake the waiters of their job at
//     once, on both engines.
//   - PostgreSQL: ModJob and DelJob NOTIFY nsfd_spool with the job's id, in
//     their transaction; the watcher is one connection per process that
//     LISTENs and wakes the waiters of that id. Waiting costs no query until
//     the job changes.
//   - SQLite has no notifications between processes, but every commit
//     writes the database's -wal file: the watcher is an inotify watch
//     (fsnotify) on the database's directory, and a write to the database or
//     its WAL wakes every waiter of the process to read its job again (an
//     indexed read of one row; writes to a registry are a few per second).
//
// Either way a waiter also reads its job again every SpoolRecheck, a safety
// net for an event that was missed, and every SpoolRecheckDegraded while the
// watcher is not working (PostgreSQL unreachable, a directory inotify cannot
// watch). The watcher starts with the first waiter of a store and stops with
// the last.
const (
	// SpoolRecheck is how often a waiter reads its job while the
	// watcher works.
	SpoolRecheck = 5 * time.Second
	// SpoolRecheckDegraded is how often a waiter reads its job while the
	// watcher does not work.
	SpoolRecheckDegraded = time.Second
)

// pgSpoolChannel is the channel ModJob and DelJob notify on PostgreSQL, with
// the job's id as payload.
const pgSpoolChannel = "nsfd_spool"

// waitHubs holds the waiting state of each store that has waiters; hubsMu
// guards the map and every hub's waiters.
var (
	hubsMu   sync.Mutex
	waitHubs = map[*store]*waitHub{}
)

// waitHub is the waiters of one store and the watcher that wakes them.
type waitHub struct {
	waiters map[string]map[chan struct{}]struct{} // job id -> wake channels
	n       int                                   // waiters
	stop    context.CancelFunc                    // stops the watcher
	ready   chan struct{}                         // closed once the watcher listens, or has failed to
	healthy atomic.Bool                           // the watcher works
}

// joinWaiters registers a waiter for the job id of s, starting the store's
// watcher if it is the first, and returns its hub, its wake channel and the
// function that unregisters it.
func joinWaiters(s *store, id string) (*waitHub, <-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h := waitHubs[s]
	if h == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h = &waitHub{waiters: map[string]map[chan struct{}]struct{}{}, stop: cancel, ready: make(chan struct{})}
		waitHubs[s] = h
		go h.watch(ctx, s)
	}
	if h.waiters[id] == nil {
		h.waiters[id] = map[chan struct{}]struct{}{}
	}
	h.waiters[id][ch] = struct{}{}
	h.n++
	leave := func() {
		hubsMu.Lock()
		defer hubsMu.Unlock()
		delete(h.waiters[id], ch)
		if len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
		h.n--
		if h.n == 0 {
			h.stop()
			if waitHubs[s] == h {
				delete(waitHubs, s)
			}
		}
	}
	return h, ch, leave
}

// wakeWaiters wakes the waiters of the job id in s, if any.
func wakeWaiters(s *store, id string) {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	if h := waitHubs[s]; h != nil {
		h.wakeLocked(id)
	}
}

// wake wakes the waiters of the job id, or every waiter if id is "".
func (h *waitHub) wake(id string) {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h.wakeLocked(id)
}

func (h *waitHub) wakeLocked(id string) {
	poke := func(chs map[chan struct{}]struct{}) {
		for ch := range chs {
			select {
			case ch <- struct{}{}:
			default: // already woken
			}
		}
	}
	if id != "" {
		poke(h.waiters[id])
		return
	}
	for _, chs := range h.waiters {
		poke(chs)
	}
}

// watch runs the store's watcher until ctx ends.
func (h *waitHub) watch(ctx context.Context, s *store) {
	var readyOnce sync.Once
	ready := func() { readyOnce.Do(func() { close(h.ready) }) }
	defer ready()
	if s.isPostgres() {
		h.listenPostgres(ctx, s, ready)
	} else {
		h.watchSQLite(ctx, s, ready)
	}
}

// listenPostgres LISTENs on its own connection (not one of the pool's) and
// wakes the waiters of each notified id; a lost connection wakes everyone
// and is opened again, with back-off.
func (h *waitHub) listenPostgres(ctx context.Context, s *store, ready func()) {
	var backoff time.Duration
	for ctx.Err() == nil {
		// Why it failed does not matter: the waiters read their jobs
		// every SpoolRecheckDegraded until it works again.
		_ = h.listenOnce(ctx, s, ready)
		h.healthy.Store(false)
		ready() // a waiter does not wait for a watcher that failed
		if ctx.Err() != nil {
			return
		}
		h.wake("")
		backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listenOnce opens a connection, LISTENs, and waits for notifications until
// ctx ends or the connection fails.
func (h *waitHub) listenOnce(ctx context.Context, s *store, ready func()) error {
	cfg, err := pgConfig(ctx, s.w)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return s.d.scrub(fmt.Errorf("listen: %w", err))
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgSpoolChannel); err != nil {
		return s.d.scrub(fmt.Errorf("listen: %w", err))
	}
	if !h.healthy.Swap(true) {
		h.wake("") // what changed while no one listened
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n != nil { // nil: another message woke pgx
			h.wake(n.Payload)
		}
	}
}

// pgConfig returns the connection settings of db's pgx pool.
func pgConfig(ctx context.Context, db *sql.DB) (*pgx.ConnConfig, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var cfg *pgx.ConnConfig
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("listen: driver connection %T is not pgx's", dc)
		}
		cfg = sc.Conn().Config() // a copy
		// The copy still delivers notifications to the pool's
		// connection; a nil handler makes pgx buffer them for
		// WaitForNotification.
		cfg.OnNotification = nil
		return nil
	})
	return cfg, err
}

// watchSQLite watches the database's directory and wakes every waiter when
// the database or its WAL is written.
func (h *waitHub) watchSQLite(ctx context.Context, s *store, ready func()) {
	var file string
	if err := s.r.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil || file == "" {
		return // unhealthy: waiters recheck every SpoolRecheckDegraded
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(file)); err != nil {
		return
	}
	h.healthy.Store(true)
	ready()
	wal := file + "-wal"
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				h.healthy.Store(false)
				return
			}
			if (ev.Name == wal || ev.Name == file) && ev.Op&(fsnotify.Write|fsnotify.Create) != 0 {
				h.wake("")
			}
		case _, ok := <-w.Errors:
			if !ok {
				h.healthy.Store(false)
				return
			}
			h.wake("") // an overflowed queue may have lost a write
		}
	}
}

// waitReadHook, if set (by tests), is called each time WaitJob has read an
// unfinished job and is about to sleep.
var waitReadHook func(id string)

func (s *store) WaitJob(ctx context.Context, id string) (Job, error) {
	h, woken, leave := joinWaiters(s, id)
	defer leave()
	select {
	case <-h.ready:
	case <-ctx.Done():
		return Job{}, fmt.Errorf("wait for job %q: %w", id, ctx.Err())
	}
	t := time.NewTimer(SpoolRecheck)
	defer t.Stop()
	for {
		j, err := s.GetJob(ctx, id)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
				err = fmt.Errorf("%w: %w", err, ctxErr)
			}
			return Job{}, err
		}
		if JobFinished(j.Status) {
			return j, nil
		}
		if waitReadHook != nil {
			waitReadHook(id)
		}
		interval := SpoolRecheck
		if !h.healthy.Load() {
			interval = SpoolRecheckDegraded
		}
		t.Reset(interval)
		select {
		case <-woken:
		case <-t.C:
		case <-ctx.Done():
			return Job{}, fmt.Errorf("wait for job %q: %w", id, ctx.Err())
		}
	}
}
