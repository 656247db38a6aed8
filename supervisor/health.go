package supervisor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// Health checks (health = http:/PATH | exec:PROGRAM ARGS).
//
// Each daemon with a check gets one goroutine, its checker, started when
// its pool first runs (a worker READY) and stopped when the pool stops or
// the daemon goes. It checks, waits health_interval, checks again: one
// check in flight at a time, each bounded by health_timeout. While the pool
// is not running (starting, backing off, fatal, idle on demand) it skips
// its turns. The checkers learn of pool states from the pools' observer
// and never block it, nor Run's loop: they hold their state under a mutex
// of their own, and reach the master only to roll a pool, through do like
// any request.
//
// A failed check marks the daemon unhealthy: status shows it with the
// reason, the nsfd_daemon_healthy gauge drops to 0, and the registrar
// marks its endpoints, which Resolve then leaves out while another node
// has the daemon healthy. Every health_failures failures in a row, its
// workers are rolled (replacements ready first, as `nsfd restart` does).
// A passing check clears the mark.

// HealthStatus is a daemon's health check in a DaemonStatus.
type HealthStatus struct {
	Check    string `json:"check"`    // as configured: "http:/healthz", "exec:/usr/local/bin/check"
	Checking bool   `json:"checking"` // checks run: the daemon is running
	Healthy  bool   `json:"healthy"`  // no check failed since the last that passed
	Failures int    `json:"failures"` // checks failed in a row
	// Reason is why the daemon is unhealthy: "unhealthy: GET /healthz:
	// 503 (3 in a row)"; "" while healthy.
	Reason    string     `json:"reason,omitempty"`
	LastError string     `json:"last_error,omitempty"` // what the last failed check said: "GET /healthz: 503"
	Checked   *time.Time `json:"checked,omitempty"`    // when the last check ended
	Rolls     int        `json:"rolls"`                // rolls of the workers for failed checks
}

// healthProbe runs one check: nil means healthy, an error says why not.
// It returns by the time ctx ends.
type healthProbe func(ctx context.Context) error

// healthTarget is what a daemon's checks need of its configuration.
type healthTarget struct {
	daemon string
	check  config.HealthCheck
	// network and address of the first stream listener, an http check's
	// ("tcp", "127.0.0.1:7001"); tls when the workers serve TLS on it.
	network, address string
	tls              bool
	addresses        []string // every listener, "tcp:127.0.0.1:7001"
	creds            config.Creds
	cwd              string
}

// healthChecks runs the checkers of every daemon.
type healthChecks struct {
	log hclog.Logger
	// Seams: the probe of a target, the clock, the roll of a daemon's
	// workers and the registry mark (nil: none).
	probe func(t healthTarget, log hclog.Logger) healthProbe
	after func(time.Duration) <-chan time.Time
	now   func() time.Time
	roll  func(ctx context.Context, daemon string) error
	mark  func(daemon string, unhealthy bool)

	mu      sync.Mutex
	daemons map[string]*healthDaemon
	closed  bool
	wg      sync.WaitGroup
}

// healthDaemon is one daemon's checker and what it found.
type healthDaemon struct {
	target  *healthTarget      // nil: no check
	running bool               // its pool runs: checks are due
	stop    context.CancelFunc // its checker runs; nil: none
	st      HealthStatus
}

func newHealthChecks(log hclog.Logger) *healthChecks {
	return &healthChecks{
		log:     log,
		probe:   probeOf,
		after:   time.After,
		now:     time.Now,
		daemons: map[string]*healthDaemon{},
	}
}

func (h *healthChecks) entry(name string) *healthDaemon {
	d := h.daemons[name]
	if d == nil {
		d = &healthDaemon{st: HealthStatus{Healthy: true}}
		h.daemons[name] = d
	}
	return d
}

// set records daemon name's check (nil: none). A check set on a running
// daemon (a reload that added it) starts at once; a changed check applies
// from the next turn.
func (h *healthChecks) set(name string, t *healthTarget) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.entry(name) // kept without a check: it knows whether the pool runs
	if t == nil || !t.check.Enabled() {
		h.stopLocked(name, d)
		d.target = nil
		return
	}
	d.target = t
	d.st.Check = t.check.String()
	h.startLocked(name, d)
}

// remove forgets daemon name: it is gone.
func (h *healthChecks) remove(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.daemons[name]; d != nil {
		h.stopLocked(name, d)
		delete(h.daemons, name)
	}
}

// observe follows a pool's state: a running pool is checked; a stopping
// or stopped one is no longer, and its health is forgotten.
func (h *healthChecks) observe(e prefork.Event) {
	if e.Kind != prefork.EventState {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.daemons[e.Pool]
	switch e.State {
	case prefork.PoolRunning:
		if d == nil {
			d = h.entry(e.Pool) // started before set: set starts the checker
		}
		d.running = true
		h.startLocked(e.Pool, d)
	case prefork.PoolStopping, prefork.PoolStopped:
		if d != nil {
			d.running = false
			h.stopLocked(e.Pool, d)
		}
	default:
		if d != nil {
			d.running = false // paused: its turns are skipped
		}
	}
}

// startLocked starts d's checker if it has a check, runs and has none.
func (h *healthChecks) startLocked(name string, d *healthDaemon) {
	if d.target == nil || !d.running || d.stop != nil || h.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	d.st.Checking = true
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.run(ctx, name, d)
	}()
}

// stopLocked stops d's checker and forgets what it found: a daemon
// started again begins healthy.
func (h *healthChecks) stopLocked(name string, d *healthDaemon) {
	if d.stop != nil {
		d.stop()
		d.stop = nil
	}
	if !d.st.Healthy && h.mark != nil {
		h.mark(name, false)
	}
	d.st = HealthStatus{Check: d.st.Check, Healthy: true}
}

// close stops every checker and waits for them.
func (h *healthChecks) close() {
	h.mu.Lock()
	h.closed = true
	for name, d := range h.daemons {
		h.stopLocked(name, d)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// status is daemon name's health, nil if it has no check.
func (h *healthChecks) status(name string) *HealthStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.daemons[name]
	if d == nil || d.target == nil {
		return nil
	}
	st := d.st
	if st.Checked != nil {
		at := *st.Checked
		st.Checked = &at
	}
	return &st
}

// run is daemon name's checker, until ctx ends.
func (h *healthChecks) run(ctx context.Context, name string, d *healthDaemon) {
	log := h.log.Named(name)
	var rolled chan error // a roll under way
	h.mu.Lock()
	next := h.after(d.target.check.Interval)
	h.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-rolled:
			rolled = nil
			if err != nil {
				log.Error("health: cannot roll the workers", "error", err)
			}
			continue
		case <-next:
			if ctx.Err() != nil {
				return // stopped as the turn came: select picks either
			}
		}
		h.mu.Lock()
		t, due := *d.target, d.running
		h.mu.Unlock()
		if due {
			cctx, cancel := context.WithTimeout(ctx, t.check.Timeout)
			err := h.probe(t, log)(cctx)
			cancel()
			if ctx.Err() != nil {
				return // stopped meanwhile: what it found no longer counts
			}
			if h.record(ctx, name, d, t, err, log) && rolled == nil {
				rolled = make(chan error, 1)
				h.wg.Add(1)
				go func() {
					defer h.wg.Done()
					rolled <- h.roll(ctx, name)
				}()
			}
		}
		next = h.after(t.check.Interval)
	}
}

// record keeps the result of a check, marks or clears the registry on a
// change, and says whether the workers are to be rolled.
func (h *healthChecks) record(ctx context.Context, name string, d *healthDaemon, t healthTarget, err error, log hclog.Logger) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return false // stopped while it waited for the lock
	}
	now := h.now()
	d.st.Checked = &now
	if err == nil {
		if !d.st.Healthy {
			log.Info("health: healthy again", "check", t.check.String(), "after", fmt.Sprintf("%d failed", d.st.Failures))
			if h.mark != nil {
				h.mark(name, false)
			}
		}
		d.st.Healthy, d.st.Failures, d.st.Reason = true, 0, ""
		return false
	}
	d.st.Failures++
	d.st.LastError = err.Error()
	d.st.Reason = fmt.Sprintf("unhealthy: %s (%d in a row)", err, d.st.Failures)
	if d.st.Healthy {
		d.st.Healthy = false
		if h.mark != nil {
			h.mark(name, true)
		}
	}
	roll := d.st.Failures%t.check.Failures == 0
	if roll {
		d.st.Rolls++
		log.Warn("health: check failed; rolling the workers", "check", t.check.String(), "error", err,
			"in_a_row", d.st.Failures, "health_failures", t.check.Failures)
	} else {
		log.Warn("health: check failed", "check", t.check.String(), "error", err,
			"in_a_row", d.st.Failures, "health_failures", t.check.Failures)
	}
	return roll
}

// healthTargetOf is what the checks of d on listeners ls need; nil if d
// has no check.
func healthTargetOf(d *config.Daemon, ls []*prefork.Listener) *healthTarget {
	if !d.Health.Enabled() {
		return nil
	}
	t := &healthTarget{daemon: d.Name, check: d.Health, creds: d.Creds, cwd: d.Cwd, tls: d.TLSCert != ""}
	for _, l := range ls {
		addr := dialAddress(l)
		t.addresses = append(t.addresses, l.Proto()+":"+addr)
		if t.network == "" && (l.Proto() == "tcp" || l.Proto() == "unix") {
			t.network, t.address = l.Proto(), addr
		}
	}
	return t
}

// healthRoll rolls daemon name's workers for its failing checks, as
// `nsfd restart` does (replacements ready first); a daemon that stopped,
// is held or is draining meanwhile is left alone.
func (s *Supervisor) healthRoll(ctx context.Context, name string) error {
	var pool Pool
	if err := s.do(ctx, func(context.Context) {
		if d := s.daemons[name]; d != nil && !d.draining && !d.held {
			pool = d.pool
		}
	}); err != nil {
		return err
	}
	if pool == nil {
		return nil
	}
	return pool.Restart(ctx)
}
