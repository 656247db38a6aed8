package supervisor

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/registry"
)

// registrar keeps the registry in step with the daemons, off the
// supervision path: the supervisor and the pools' observers only change
// the desired state in memory (under a mutex, never waiting on the
// database) and kick the registrar's goroutine, which writes what changed.
// If the registry is unreachable, daemons keep serving; writes are retried
// with back-off and every daemon is registered again once it answers. The
// failure is logged once per change, not per attempt.
type registrar struct {
	typ, dsn  string
	node      string
	pid       int
	heartbeat time.Duration
	log       hclog.Logger
	counters  func(ctx context.Context) map[string][]registry.Worker // request counters, read every heartbeat
	open      func(ctx context.Context) (registry.Registry, error)   // registry.Open; a seam for tests

	// live is the registry run holds open, for the resolver socket; nil
	// while it has none.
	live atomic.Pointer[liveRegistry]

	mu      sync.Mutex
	daemons map[string]*regDaemon
	kick    chan struct{}
	done    chan struct{}
}

// liveRegistry holds the registry run has open.
type liveRegistry struct{ registry.Registry }

// regDaemon is one daemon's desired registry state.
type regDaemon struct {
	rec     registry.Daemon
	up      bool // registered (its pool has run)
	gone    bool // to be unregistered
	dirty   bool // rec must be written
	workers map[int]registry.Worker
	exits   []regExit // exits not yet recorded
	wdirty  bool
	// synced is the worker set last written with SyncWorkers; a heartbeat
	// that finds the same set (states, counters) writes nothing for the
	// daemon (sync.go).
	synced []registry.Worker
	// unhealthy: its health check fails; its endpoints are registered
	// marked (health.go).
	unhealthy bool
}

type regExit struct {
	pid int
	how string
}

func newRegistrar(typ, dsn, node string, heartbeat time.Duration, log hclog.Logger) *registrar {
	if heartbeat <= 0 {
		heartbeat = 5 * time.Second
	}
	return &registrar{
		typ: typ, dsn: dsn, node: node, pid: os.Getpid(), heartbeat: heartbeat, log: log,
		open:    func(ctx context.Context) (registry.Registry, error) { return registry.Open(ctx, typ, dsn) },
		daemons: map[string]*regDaemon{},
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

func (r *registrar) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *registrar) entry(name string) *regDaemon {
	d := r.daemons[name]
	if d == nil {
		d = &regDaemon{workers: map[int]registry.Worker{}}
		r.daemons[name] = d
	}
	return d
}

// define records what a daemon registers as: its endpoints, encoding and
// config hash. It is registered once its pool first runs (state).
func (r *registrar) define(rec registry.Daemon) {
	r.mu.Lock()
	d := r.entry(rec.Name)
	rec.Node, rec.MasterPID, rec.State, rec.StartedAt = r.node, r.pid, d.rec.State, d.rec.StartedAt
	if rec.StartedAt.IsZero() {
		rec.StartedAt = time.Now()
	}
	d.rec, d.gone = rec, false
	if d.up {
		d.dirty = true
	}
	r.mu.Unlock()
	r.poke()
}

// state follows a daemon's pool state: the first "running" registers it;
// any other state keeps the row but Resolve skips it.
func (r *registrar) state(name, state string) {
	r.mu.Lock()
	d := r.entry(name)
	if d.rec.State != state || (!d.up && state == registry.StateRunning) {
		d.rec.State = state
		if state == registry.StateRunning {
			d.up, d.gone = true, false
		}
		d.dirty = d.up
	}
	r.mu.Unlock()
	r.poke()
}

// health marks a daemon's endpoints unhealthy, or healthy again.
func (r *registrar) health(name string, unhealthy bool) {
	r.mu.Lock()
	d := r.entry(name)
	if d.unhealthy != unhealthy {
		d.unhealthy = unhealthy
		d.dirty = d.up
	}
	r.mu.Unlock()
	r.poke()
}

// remove unregisters a daemon.
func (r *registrar) remove(name string) {
	r.mu.Lock()
	if d := r.daemons[name]; d != nil {
		d.up, d.gone, d.dirty, d.unhealthy = false, true, true, false
		d.rec.State, d.rec.StartedAt = "", time.Time{}
		if d.rec.Name == "" {
			delete(r.daemons, name)
		}
	}
	r.mu.Unlock()
	r.poke()
}

func (r *registrar) workerStarted(name string, pid, slot int) {
	r.mu.Lock()
	d := r.entry(name)
	d.workers[pid] = registry.Worker{PID: pid, Slot: slot, State: registry.WorkerStarting, StartedAt: time.Now()}
	d.wdirty = true
	r.mu.Unlock()
	r.poke()
}

func (r *registrar) workerExited(name string, pid int, how string) {
	r.mu.Lock()
	d := r.entry(name)
	delete(d.workers, pid)
	d.exits = append(d.exits, regExit{pid, how})
	d.wdirty = true
	r.mu.Unlock()
	r.poke()
}

// run owns the registry connection until ctx ends, then unregisters every
// daemon (bounded) and closes it.
func (r *registrar) run(ctx context.Context) {
	defer close(r.done)
	var (
		reg      registry.Registry
		failing  error
		backoff  = 100 * time.Millisecond
		retry    <-chan time.Time
		hb       = time.NewTicker(r.heartbeat)
		flush    = time.NewTimer(time.Hour)
		flushing bool
		beats    int
	)
	defer hb.Stop()
	flush.Stop()
	fail := func(err error) {
		if failing == nil || failing.Error() != err.Error() {
			r.log.Error("registry unreachable; daemons keep serving, retrying", "error", err)
		}
		failing = err
		retry = time.After(backoff)
		backoff = min(backoff*2, r.heartbeat)
	}
	ok := func() {
		if failing != nil {
			r.log.Info("registry reachable again; registering every daemon")
			r.markAllDirty()
			r.poke()
		}
		failing, retry, backoff = nil, nil, 100*time.Millisecond
	}
	connect := func() bool {
		if reg != nil {
			return true
		}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		g, err := r.open(octx)
		if err != nil {
			fail(err)
			return false
		}
		if n, err := g.PurgeNode(octx, r.node); err != nil {
			g.Close()
			fail(err)
			return false
		} else if n > 0 {
			r.log.Info("removed what a previous master on this node left in the registry", "daemons", n)
		}
		reg = g
		r.live.Store(&liveRegistry{g})
		r.markAllDirty()
		return true
	}
	// drop closes the registry: the next write opens it anew.
	drop := func() {
		r.live.Store(nil)
		reg.Close()
		reg = nil
	}
	// write sends what changed; full (every heartbeat, and every retry
	// after a failure) starts with a heartbeat, a real round trip, so a
	// registry is only declared back once it answers.
	write := func(full bool) {
		if !connect() {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if full || failing != nil {
			err := reg.Heartbeat(wctx, r.node, r.pid)
			if errors.Is(err, registry.ErrReplaced) {
				// Writing on would go to a database nobody else sees.
				r.log.Warn("the registry database was deleted or replaced; opening it anew and registering every daemon again", "error", err)
				drop()
				if !connect() {
					return
				}
				err = reg.Heartbeat(wctx, r.node, r.pid)
			}
			if errors.Is(err, registry.ErrNotFound) {
				r.markAllDirty() // nothing of ours there (new, or purged elsewhere): register again
				err = nil
			}
			if err != nil {
				fail(err)
				return
			}
		}
		r.log.Trace("registry write", "full", full)
		if err := r.writeDirty(wctx, reg, full); err != nil {
			fail(err)
			return
		}
		ok()
	}
	write(false)
	for {
		select {
		case <-ctx.Done():
			if reg != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r.mu.Lock()
				names := slices.Collect(maps.Keys(r.daemons))
				r.mu.Unlock()
				for _, n := range names {
					if err := reg.Unregister(sctx, r.node, n); err != nil {
						r.log.Error("unregister", "daemon", n, "error", err)
					}
				}
				cancel()
				drop()
			}
			return
		case <-r.kick:
			// Registration changes go out at once; worker churn is batched.
			if !flushing {
				flushing = true
				flush.Reset(20 * time.Millisecond)
			}
		case <-flush.C:
			flushing = false
			if retry == nil {
				write(false)
			}
		case <-retry:
			retry = nil
			write(false)
		case <-hb.C:
			if retry != nil {
				continue
			}
			write(true)
			if beats++; failing == nil && reg != nil && beats%purgeEvery == 0 {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if n, err := reg.PurgeStale(pctx, max(10*r.heartbeat, time.Minute)); err == nil && n > 0 {
					r.log.Info("purged stale daemons of other nodes from the registry", "daemons", n)
				}
				cancel()
			}
		}
	}
}

func (r *registrar) markAllDirty() {
	r.mu.Lock()
	for _, d := range r.daemons {
		d.dirty, d.wdirty = true, true
	}
	r.mu.Unlock()
}

// writeDirty writes every changed daemon; with full, request counters too.
func (r *registrar) writeDirty(ctx context.Context, reg registry.Registry, full bool) error {
	var counters map[string][]registry.Worker
	if full && r.counters != nil {
		counters = r.counters(ctx)
	}
	type job struct {
		name    string
		d       regDaemon
		workers []registry.Worker
	}
	var jobs []job
	r.mu.Lock()
	for name, d := range r.daemons {
		if !d.dirty && !d.wdirty && (counters[name] == nil || sameWorkers(counters[name], d.synced)) {
			continue
		}
		j := job{name: name, d: *d}
		j.d.exits = append([]regExit(nil), d.exits...)
		if ws, ok := counters[name]; ok {
			j.workers = ws
		} else {
			for _, w := range d.workers {
				j.workers = append(j.workers, w)
			}
		}
		d.dirty, d.wdirty, d.exits = false, false, nil
		if d.gone {
			delete(r.daemons, name)
		}
		jobs = append(jobs, j)
	}
	r.mu.Unlock()
	var failed []job
	var firstErr error
	for _, j := range jobs {
		err := r.writeOne(ctx, reg, j.d, j.workers)
		if err != nil {
			failed = append(failed, j)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		r.wrote(j.name, j.workers)
	}
	if len(failed) > 0 {
		// Put back what did not make it, unless something newer arrived.
		r.mu.Lock()
		for _, j := range failed {
			d := r.daemons[j.name]
			if d == nil {
				if j.d.gone {
					cp := j.d
					cp.workers = maps.Clone(j.d.workers)
					cp.dirty = true
					r.daemons[j.name] = &cp
				}
				continue
			}
			d.dirty, d.wdirty = true, true
			d.exits = append(j.d.exits, d.exits...)
		}
		r.mu.Unlock()
	}
	return firstErr
}

func (r *registrar) writeOne(ctx context.Context, reg registry.Registry, d regDaemon, ws []registry.Worker) error {
	if d.gone {
		return reg.Unregister(ctx, r.node, d.rec.Name)
	}
	if !d.up || d.rec.Name == "" { // not running yet: nothing to register
		return nil
	}
	if d.dirty {
		rec := d.rec
		if d.unhealthy {
			rec.Endpoints = slices.Clone(rec.Endpoints)
			for i := range rec.Endpoints {
				rec.Endpoints[i].Unhealthy = true
			}
		}
		if err := reg.Register(ctx, rec); err != nil {
			return err
		}
		r.log.Debug("registered", "daemon", d.rec.Name, "state", d.rec.State, "endpoints", len(d.rec.Endpoints))
	}
	for _, e := range d.exits {
		if err := reg.WorkerExited(ctx, d.rec.Node, d.rec.Name, e.pid, e.how); err != nil && !errors.Is(err, registry.ErrNotFound) {
			return err
		}
	}
	err := reg.SyncWorkers(ctx, d.rec.Node, d.rec.Name, ws)
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	return err
}
