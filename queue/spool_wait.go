package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsfd/nsfd/internal/sqlstore"
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
// How a process hears of the others' changes is the registry driver's
// (sqlstore.Dialect's Notify and Listen); the hub below only runs the
// watcher, again with back-off when it fails, and wakes the waiters.
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

// spoolChannel is the channel ModJob and DelJob notify on (PostgreSQL), with
// the job's id as payload.
const spoolChannel = "nsfd_spool"

// waitHubs holds the waiting state of each store that has waiters; hubsMu
// guards the map and every hub's waiters.
var (
	hubsMu   sync.Mutex
	waitHubs = map[*sqlstore.Store]*waitHub{}
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
func joinWaiters(s *sqlstore.Store, id string) (*waitHub, <-chan struct{}, func()) {
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
func wakeWaiters(s *sqlstore.Store, id string) {
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

// watch runs the store's watcher until ctx ends: the dialect's Listen,
// again with back-off after it fails. While it does not work, waiters read
// their jobs every SpoolRecheckDegraded; when it works again, they are all
// woken to read what changed meanwhile.
func (h *waitHub) watch(ctx context.Context, s *sqlstore.Store) {
	var readyOnce sync.Once
	ready := func() { readyOnce.Do(func() { close(h.ready) }) }
	defer ready()
	listen := s.Dialect().Listen
	if listen == nil {
		return // unhealthy: waiters recheck every SpoolRecheckDegraded
	}
	listening := func() {
		if !h.healthy.Swap(true) {
			h.wake("") // what changed while no one listened
		}
		ready()
	}
	var backoff time.Duration
	for ctx.Err() == nil {
		// Why it failed does not matter: the waiters read their jobs
		// every SpoolRecheckDegraded until it works again.
		_ = listen(ctx, s, spoolChannel, listening, h.wake)
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

// waitReadHook, if set (by tests), is called each time WaitJob has read an
// unfinished job and is about to sleep.
var waitReadHook func(id string)

func (sp *sqlSpool) WaitJob(ctx context.Context, id string) (Job, error) {
	h, woken, leave := joinWaiters(sp.s, id)
	defer leave()
	select {
	case <-h.ready:
	case <-ctx.Done():
		return Job{}, fmt.Errorf("wait for job %q: %w", id, ctx.Err())
	}
	t := time.NewTimer(SpoolRecheck)
	defer t.Stop()
	for {
		j, err := sp.GetJob(ctx, id)
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
