package prefork

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config is one daemon's pool: what to run, on which listeners, and how many.
type Config struct {
	Name       string
	Node       string
	Command    []string
	Env        []string // the daemon's own KEY=VALUE pairs, added to the master's environment
	Listeners  []*Listener
	NotifyPath string // where the pool binds its NOTIFY_SOCKET
	Notify     bool   // type = notify: a worker is ready once it sends READY=1

	Policy            PolicyOptions
	MaxRequests       int // requests (REQUESTS=, else BUSY=1 count) after which a worker is replaced; 0: unlimited
	MaxRequestsJitter int // each worker's limit is MaxRequests + rand[0, jitter]

	ReadyTimeout    time.Duration // type = notify: kill a worker not ready by then
	GracefulTimeout time.Duration // SIGTERM, then SIGKILL after this
	StartPeriod     time.Duration // a worker exiting sooner is a failed start
	StartRetries    int           // failed starts in a row before the pool goes fatal
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	Watchdog        time.Duration // kill a ready worker silent for this long; 0: off

	Exec ExecOptions
	// Shim is the argv prefix that runs the exec shim; default: this
	// executable with ShimArg, whose main must call RunShim.
	Shim []string

	Logger hclog.Logger
	// Output returns where one stream ("stdout" or "stderr") of the worker
	// pid goes; nil discards. The pool writes what the worker writes to it,
	// in pieces of any size, and closes it at the stream's EOF, from the
	// one goroutine that reads every worker's output (logging.LineWriter
	// fits). Write must not block, or it holds up the output and the exits
	// of every worker, and must not retain its argument.
	Output func(pid int, stream string) io.WriteCloser
	// Observer is told of spawns, exits and state changes, from the pool's
	// goroutine: it must not block.
	Observer func(Event)
}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		return errors.New("pool: no name")
	}
	if len(c.Command) == 0 {
		return fmt.Errorf("pool %s: no command", c.Name)
	}
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("pool %s: %w", c.Name, err)
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.GracefulTimeout <= 0 {
		c.GracefulTimeout = 10 * time.Second
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.StartRetries <= 0 {
		c.StartRetries = 5
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = 100 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffInitial {
		c.BackoffMax = c.BackoffInitial
	}
	if len(c.Shim) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("pool %s: find own executable for the exec shim: %w", c.Name, err)
		}
		c.Shim = []string{exe, ShimArg}
	}
	return nil
}

// PoolState is the state of a daemon's pool.
type PoolState string

// Pool states.
const (
	PoolStarting PoolState = "starting" // no worker ready yet
	PoolRunning  PoolState = "running"  // at least one worker ready
	PoolBackoff  PoolState = "backoff"  // no worker ready; waiting to retry a failed start
	PoolFatal    PoolState = "fatal"    // gave up after start_retries failed starts
	PoolStopping PoolState = "stopping" // draining
	PoolStopped  PoolState = "stopped"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	EventSpawn EventKind = iota // a worker was started
	EventReady                  // a worker became ready
	EventExit                   // a worker exited
	EventState                  // the pool changed state
)

// Event is a change in a pool, reported to Config.Observer.
type Event struct {
	Kind     EventKind
	Pool     string
	State    PoolState // for EventState: the new state
	PID      int
	Slot     int
	Requests int    // requests the worker served, for EventExit
	Cause    string // for EventExit: "exited", "crashed", "failed-start", "stopped", "retired", "replaced", "watchdog", "ready-timeout"
	ExitCode int    // -1 when killed by a signal
	Signal   string // the signal that ended it, if any
}

// WorkerStatus is one worker in a Status.
type WorkerStatus struct {
	PID      int       `json:"pid"`
	Slot     int       `json:"slot"`
	State    string    `json:"state"`
	Requests int       `json:"requests"`
	Started  time.Time `json:"started"`
	Status   string    `json:"status,omitempty"` // the worker's last STATUS= text
}

// Status is a snapshot of a pool.
type Status struct {
	Name         string         `json:"name"`
	State        PoolState      `json:"state"`
	Listeners    []string       `json:"listeners"`
	Workers      []WorkerStatus `json:"workers"`
	Policy       PolicyOptions  `json:"policy"`
	Spawns       int            `json:"spawns"`
	Restarts     int            `json:"restarts"`      // workers started again after an unplanned exit
	FailedStarts int            `json:"failed_starts"` // consecutive failed starts now
	Requests     int            `json:"requests"`      // requests served by all workers, exited ones included
	Malformed    int            `json:"malformed"`     // notify datagrams dropped
	Since        time.Time      `json:"since"`
}

type worker struct {
	pid        int
	slot       int
	gen        int // restart generation; older ones are rolled out
	state      WorkerState
	started    time.Time
	idleSince  time.Time
	lastPing   time.Time
	ready      bool
	attempt    int // the start attempt (round) it belongs to
	requests   int
	ownCount   bool // sent REQUESTS=: its requests come from that word, no longer from BUSY=1
	maxReq     int
	replaced   bool   // max_requests reached or rolled: stopped once replacements are ready
	cause      string // why it was told to stop
	killAt     time.Time
	killed     bool
	status     string
	proc       *os.Process
	stopSignal bool
}

// exitEvent says a worker has exited, and that what it wrote before is read.
// It is not reaped yet: its zombie keeps the pid from being reused until the
// loop reaps it (proc.Wait, which then returns at once) and forgets it, so no
// signal can reach a stranger.
type exitEvent struct {
	pid  int
	proc *os.Process
}

// Pool runs one daemon's workers. One goroutine owns all its state; the
// methods send it requests.
type Pool struct {
	cfg Config

	notes chan []note
	reqs  chan func()
	stop  chan struct{}
	done  chan struct{}

	startOnce sync.Once
	stopOnce  sync.Once
	settled   chan struct{} // closed once the pool first runs, goes fatal or stops
	settle    sync.Once
	nsock     *notifySocket
	sockDone  chan struct{}

	pump   *pump         // reads the workers' output and sees them exit
	exitMu sync.Mutex    // guards exited
	exited []exitEvent   // from the pump, for the run goroutine
	exitc  chan struct{} // a token once exited is not empty

	// Owned by the run goroutine.
	workers      map[int]*worker
	gen          int
	state        PoolState
	since        time.Time
	stopping     bool
	fatal        bool
	attempt      int
	failedStarts int
	nextSpawn    time.Time
	lastBusy     time.Time
	spawns       int
	restarts     int
	requests     int
	malformed    int
	wake         time.Time
}

// NewPool checks cfg and returns a pool that is not started yet.
func NewPool(cfg Config) (*Pool, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Pool{
		cfg:      cfg,
		notes:    make(chan []note, 64),
		exitc:    make(chan struct{}, 1),
		reqs:     make(chan func()),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		sockDone: make(chan struct{}),
		settled:  make(chan struct{}),
		workers:  make(map[int]*worker),
		state:    PoolStarting,
	}, nil
}

// Start opens the pool's notify socket and starts its goroutine, which
// spawns min_servers workers at once.
func (p *Pool) Start(ctx context.Context) error {
	var err error
	p.startOnce.Do(func() {
		if err = ctx.Err(); err != nil {
			close(p.done)
			return
		}
		if p.pump, err = acquirePump(); err != nil {
			close(p.done)
			return
		}
		if p.cfg.NotifyPath != "" {
			p.nsock, err = listenNotify(p.cfg.NotifyPath, p.cfg.Exec.UID, p.cfg.Exec.GID)
			if err != nil {
				releasePump()
				close(p.done)
				return
			}
			go p.nsock.read(p.notes, p.sockDone)
		}
		p.since = time.Now()
		go p.run()
	})
	return err
}

// Settled is closed once the pool has first come up (a worker is ready),
// gone fatal, or stopped: what a master waits for before it reports ready.
func (p *Pool) Settled() <-chan struct{} { return p.settled }

// Done is closed once the pool has stopped and every worker has exited.
func (p *Pool) Done() <-chan struct{} { return p.done }

// Stop drains the pool: every worker gets SIGTERM, and SIGKILL after
// graceful_timeout. It returns once all have exited, or with ctx's error
// after killing the rest when ctx ends first. Stop is idempotent.
func (p *Pool) Stop(ctx context.Context) error {
	p.startOnce.Do(func() { close(p.done) }) // never started: nothing to stop
	p.stopOnce.Do(func() { close(p.stop) })
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	// Out of patience: kill what is left and wait a bounded time for the reaping.
	_ = p.do(context.Background(), func() {
		for _, w := range p.workers {
			p.kill(w)
		}
	})
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("stop %s: %w", p.cfg.Name, ctx.Err())
}

// do runs f on the pool's goroutine.
func (p *Pool) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case p.reqs <- func() { f(); close(ran) }:
	case <-p.done:
		return fmt.Errorf("pool %s: %w", p.cfg.Name, ErrStopped)
	case <-ctx.Done():
		return ctx.Err()
	}
	// The loop took f and runs it now: wait for it, so that f never writes
	// the caller's variables after the caller has returned.
	<-ran
	return nil
}

// ErrStopped is returned by requests to a pool that has stopped.
var ErrStopped = errors.New("pool stopped")

// Status returns a snapshot of the pool.
func (p *Pool) Status(ctx context.Context) (Status, error) {
	var st Status
	err := p.do(ctx, func() { st = p.snapshot() })
	if errors.Is(err, ErrStopped) {
		return Status{Name: p.cfg.Name, State: PoolStopped, Policy: p.cfg.Policy}, nil
	}
	return st, err
}

// Scale moves min_servers and max_servers by delta together, as
// Net::Server's SIGTTIN/SIGTTOU do, keeping the spare-server rules valid
// (min_servers stays at least 1). It returns the new options.
func (p *Pool) Scale(ctx context.Context, delta int) (PolicyOptions, error) {
	var out PolicyOptions
	err := p.do(ctx, func() {
		o := p.cfg.Policy
		if o.MinServers+delta < 1 {
			delta = 1 - o.MinServers
		}
		o.MinServers += delta
		o.MaxServers += delta
		if o.MinSpareServers > o.MinServers {
			o.MinSpareServers = o.MinServers
		}
		if o.MaxSpareServers >= o.MaxServers {
			o.MaxSpareServers = o.MaxServers - 1
		}
		if o.MinSpareServers > o.MaxSpareServers {
			o.MinSpareServers = o.MaxSpareServers
		}
		p.cfg.Policy = o
		out = o
		p.cfg.Logger.Info("scaled", "min_servers", o.MinServers, "max_servers", o.MaxServers)
	})
	return out, err
}

// SetPolicy replaces the pool-size options in place (a reload that changed
// only sizes): no worker is restarted; the policy applies at once.
func (p *Pool) SetPolicy(ctx context.Context, o PolicyOptions, maxRequests, jitter int) error {
	if err := o.Validate(); err != nil {
		return err
	}
	return p.do(ctx, func() {
		p.cfg.Policy, p.cfg.MaxRequests, p.cfg.MaxRequestsJitter = o, maxRequests, jitter
	})
}

// Update replaces the pool's configuration (a reload that changed more than
// pool sizes) and rolls the workers onto it: new workers start with the new
// command, environment and listeners, and the old ones get SIGTERM only once
// the new ones are ready. The notify socket and the name stay. A fatal pool
// starts again.
func (p *Pool) Update(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	var err error
	if derr := p.do(ctx, func() {
		if p.nsock != nil && (cfg.Exec.UID != p.cfg.Exec.UID || cfg.Exec.GID != p.cfg.Exec.GID) {
			if err = p.nsock.own(cfg.Exec.UID, cfg.Exec.GID); err != nil {
				return // the old configuration stays
			}
		}
		cfg.Name, cfg.NotifyPath = p.cfg.Name, p.cfg.NotifyPath
		p.cfg = cfg
		p.roll()
		p.cfg.Logger.Info("configuration changed; rolling the workers")
	}); derr != nil {
		return derr
	}
	return err
}

// Restart rolls the pool: new workers start on the same listeners and the
// old ones get SIGTERM only once the new ones are ready. A fatal pool starts
// again from scratch.
func (p *Pool) Restart(ctx context.Context) error {
	return p.do(ctx, func() {
		p.roll()
		p.cfg.Logger.Info("rolling restart")
	})
}

// roll marks every current worker for replacement and clears a fatal state.
func (p *Pool) roll() {
	p.gen++
	p.attempt++ // workers of the old config failing now do not count against the new one
	p.fatal, p.failedStarts, p.nextSpawn = false, 0, time.Time{}
	for _, w := range p.workers {
		if w.cause == "" {
			w.replaced = true
		}
	}
}

func (p *Pool) run() {
	defer close(p.done)
	defer func() {
		p.pump.drop(p) // output of workers' children that still hold a pipe
		releasePump()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stop := p.stop
	for {
		now := time.Now()
		p.step(now)
		if p.stopping && len(p.workers) == 0 {
			p.setState(PoolStopped)
			if p.nsock != nil {
				close(p.sockDone)
				p.nsock.close()
			}
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var tc <-chan time.Time
		if !p.wake.IsZero() {
			timer.Reset(max(p.wake.Sub(now), 0))
			tc = timer.C
		}
		select {
		case batch := <-p.notes:
			now := time.Now()
			for _, nt := range batch {
				p.handleNote(nt, now)
			}
		case <-p.exitc:
			for _, ex := range p.takeExited() {
				p.handleExit(ex, time.Now())
			}
		case f := <-p.reqs:
			f()
		case <-stop:
			stop = nil
			p.stopping = true
			p.setState(PoolStopping)
			for _, w := range p.workers {
				p.terminate(w, "stopped", time.Now())
			}
		case <-tc:
		}
	}
}

// step applies timeouts and the spare-server policy, and sets p.wake.
func (p *Pool) step(now time.Time) {
	p.wake = time.Time{}
	p.timeouts(now)
	if !p.stopping && !p.fatal {
		p.applyPolicy(now)
		p.timeouts(now) // arm the deadlines of workers the policy just started
	}
	p.setState(p.computeState(now))
}

// timeouts kills workers past a deadline and arms p.wake for the next one.
func (p *Pool) timeouts(now time.Time) {
	for _, w := range p.workers {
		switch {
		case w.cause != "":
			if !w.killed && !now.Before(w.killAt) {
				p.cfg.Logger.Warn("worker did not stop in time; killing it", "pid", w.pid, "graceful_timeout", p.cfg.GracefulTimeout)
				p.kill(w)
			}
			if !w.killed {
				p.wakeAt(w.killAt)
			}
		case !w.ready && p.cfg.Notify:
			deadline := w.started.Add(p.cfg.ReadyTimeout)
			if !now.Before(deadline) {
				p.cfg.Logger.Warn("worker not ready in time; killing it", "pid", w.pid, "ready_timeout", p.cfg.ReadyTimeout)
				w.cause = "ready-timeout"
				p.kill(w)
				p.failedStart(now, w.attempt)
			} else {
				p.wakeAt(deadline)
			}
		case p.cfg.Watchdog > 0:
			deadline := w.lastPing.Add(p.cfg.Watchdog)
			if !now.Before(deadline) {
				p.cfg.Logger.Warn("worker missed its watchdog; killing it", "pid", w.pid, "watchdog", p.cfg.Watchdog)
				w.cause = "watchdog"
				p.kill(w)
			} else {
				p.wakeAt(deadline)
			}
		}
		// A worker of the current start attempt that has lived start_period
		// and is ready ends a run of failed starts; older workers prove nothing.
		if p.failedStarts > 0 && w.ready && w.cause == "" && !w.replaced && w.attempt == p.attempt {
			ok := w.started.Add(p.cfg.StartPeriod)
			if !now.Before(ok) {
				p.failedStarts = 0
				p.nextSpawn = time.Time{}
			} else {
				p.wakeAt(ok)
			}
		}
	}
}

func (p *Pool) applyPolicy(now time.Time) {
	// Replaced workers go once no replacement is still starting and enough
	// replacements are ready: a new configuration that fails to start leaves
	// the old workers serving.
	starting, ready := false, 0
	for _, w := range p.workers {
		if w.cause == "" && !w.replaced {
			if w.ready {
				ready++
			} else {
				starting = true
			}
		}
	}
	if !starting && ready >= p.cfg.Policy.MinServers {
		for _, w := range p.workers {
			if w.replaced && w.cause == "" {
				p.terminate(w, "replaced", now)
			}
		}
	}
	if now.Before(p.nextSpawn) {
		p.wakeAt(p.nextSpawn)
		return
	}
	var (
		sb   []Slot
		live []*worker
	)
	for _, w := range p.workers {
		if w.cause != "" || w.replaced {
			continue
		}
		sb = append(sb, Slot{State: w.state, Started: w.started, IdleSince: w.idleSince})
		live = append(live, w)
	}
	plan := Decide(sb, p.cfg.Policy, p.lastBusy, now)
	p.wakeAt(plan.WakeAt)
	for _, i := range plan.Retire {
		p.terminate(live[i], "retired", now)
	}
	n := plan.Spawn
	// Workers being replaced or draining still hold memory: however fast
	// reloads come, the pool never has more than twice max_servers
	// processes; new ones wait for old ones to leave.
	if hard := 2*p.cfg.Policy.MaxServers - len(p.workers); n > hard {
		n = max(hard, 0)
		p.makeRoom(plan.Spawn-n, now)
	}
	if p.failedStarts > 0 { // after a failed start, probe with one worker at a time
		if starting {
			n = 0
		} else {
			n = min(n, 1)
		}
	}
	for range n {
		if err := p.spawn(now); err != nil {
			p.cfg.Logger.Error("cannot start worker", "error", err)
			p.failedStart(now, p.attempt)
			return
		}
	}
}

// makeRoom stops up to k workers that are being replaced, oldest first,
// while at least min_servers others still serve: under the process cap,
// replacements can only start once old workers leave.
func (p *Pool) makeRoom(k int, now time.Time) {
	serving := 0
	var old []*worker
	for _, w := range p.workers {
		if w.ready && w.cause == "" {
			serving++
			if w.replaced {
				old = append(old, w)
			}
		}
	}
	slices.SortFunc(old, func(a, b *worker) int { return a.started.Compare(b.started) })
	for _, w := range old {
		if k == 0 || serving <= p.cfg.Policy.MinServers {
			return
		}
		p.terminate(w, "replaced", now)
		serving--
		k--
	}
}

func (p *Pool) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	if p.wake.IsZero() || t.Before(p.wake) {
		p.wake = t
	}
}

func (p *Pool) computeState(now time.Time) PoolState {
	switch {
	case p.stopping:
		return PoolStopping
	case p.fatal:
		return PoolFatal
	}
	for _, w := range p.workers {
		if w.ready && w.cause == "" {
			return PoolRunning
		}
	}
	if now.Before(p.nextSpawn) {
		return PoolBackoff
	}
	return PoolStarting
}

func (p *Pool) setState(s PoolState) {
	if s == p.state {
		return
	}
	p.state = s
	switch s {
	case PoolRunning, PoolFatal, PoolStopped:
		p.settle.Do(func() { close(p.settled) })
	}
	p.since = time.Now()
	p.observe(Event{Kind: EventState, State: s})
}

func (p *Pool) observe(e Event) {
	if p.cfg.Observer != nil {
		e.Pool = p.cfg.Name
		p.cfg.Observer(e)
	}
}

func (p *Pool) freeSlot() int {
	used := make(map[int]bool, len(p.workers))
	for _, w := range p.workers {
		used[w.slot] = true
	}
	for i := 0; ; i++ {
		if !used[i] {
			return i
		}
	}
}

func (p *Pool) spawn(now time.Time) error {
	slot := p.freeSlot()
	maxReq := p.cfg.MaxRequests
	if maxReq > 0 && p.cfg.MaxRequestsJitter > 0 {
		maxReq += rand.IntN(p.cfg.MaxRequestsJitter + 1)
	}
	proc, err := p.startProcess(slot, maxReq)
	if err != nil {
		return err
	}
	w := &worker{
		pid:      proc.Pid,
		proc:     proc,
		slot:     slot,
		gen:      p.gen,
		started:  now,
		lastPing: now,
		attempt:  p.attempt,
		state:    StateStarting,
		maxReq:   maxReq,
	}
	if !p.cfg.Notify {
		w.ready, w.state, w.idleSince = true, StateIdle, now
	}
	p.workers[w.pid] = w
	p.spawns++
	p.cfg.Logger.Debug("worker started", "pid", w.pid, "slot", slot)
	p.observe(Event{Kind: EventSpawn, PID: w.pid, Slot: slot})
	if w.ready {
		p.observe(Event{Kind: EventReady, PID: w.pid, Slot: slot})
	}
	return nil
}

func (p *Pool) handleNote(nt note, now time.Time) {
	if nt.err != nil {
		p.malformed++
		if p.malformed == 1 || p.malformed%1000 == 0 {
			p.cfg.Logger.Warn("dropped notify datagram", "pid", nt.pid, "error", nt.err, "dropped_total", p.malformed)
		}
		return
	}
	w := p.workers[nt.pid]
	if w == nil {
		// A child of a worker, or a process that is not ours: it cannot speak for a worker.
		p.malformed++
		return
	}
	m := nt.msg
	if m.HasStatus {
		w.status = m.Status
	}
	if m.HasRequests {
		// The worker counts for itself from now on: BUSY=1 no longer adds
		// one, in this datagram or later ones, so nothing counts twice.
		w.ownCount = true
		p.countRequests(w, m.Requests)
	}
	if m.Watchdog {
		w.lastPing = now
	}
	if m.WatchdogTrigger && w.cause == "" {
		p.cfg.Logger.Warn("worker asked for the watchdog action; killing it", "pid", w.pid)
		w.cause = "watchdog"
		p.kill(w)
		return
	}
	if m.Ready && !w.ready {
		w.ready, w.lastPing = true, now
		if w.state == StateStarting {
			w.state, w.idleSince = StateIdle, now
		}
		p.observe(Event{Kind: EventReady, PID: w.pid, Slot: w.slot})
	}
	switch m.Busy {
	case 1:
		if !w.ready { // a worker that reports work is evidently ready
			w.ready = true
			p.observe(Event{Kind: EventReady, PID: w.pid, Slot: w.slot})
		}
		if w.state != StateStopping {
			w.state = StateBusy
		}
		if !w.ownCount {
			p.countRequests(w, w.requests+1)
		}
		p.lastBusy = now
	case 0:
		if w.state == StateBusy {
			w.state, w.idleSince = StateIdle, now
		}
		p.lastBusy = now
	}
	if m.Stopping && w.cause == "" {
		// The worker leaves on its own: replace it now, and do not count its exit as a crash.
		w.cause = "exited"
		w.state = StateStopping
		w.killAt = now.Add(p.cfg.GracefulTimeout)
	}
}

// countRequests raises w's request count to n, never lowering it, and
// marks w for replacement once it reaches its max_requests.
func (p *Pool) countRequests(w *worker, n int) {
	if n <= w.requests {
		return
	}
	p.requests += min(n-w.requests, math.MaxInt-p.requests) // a wild REQUESTS= cannot wrap the total
	w.requests = n
	if w.maxReq > 0 && w.requests >= w.maxReq && !w.replaced && w.cause == "" {
		p.cfg.Logger.Debug("worker reached max_requests; replacing it", "pid", w.pid, "requests", w.requests)
		w.replaced = true
	}
}

// terminate sends SIGTERM and arms the SIGKILL deadline.
func (p *Pool) terminate(w *worker, cause string, now time.Time) {
	if w.cause != "" && w.stopSignal {
		return
	}
	if w.cause == "" {
		w.cause = cause
	}
	w.stopSignal = true
	w.state = StateStopping
	w.killAt = now.Add(p.cfg.GracefulTimeout)
	if err := w.proc.Signal(sigTerm); err != nil {
		p.cfg.Logger.Debug("signal worker", "pid", w.pid, "error", err)
	}
}

// kill sends SIGKILL to the worker's process group.
func (p *Pool) kill(w *worker) {
	if w.cause == "" {
		w.cause = "stopped"
	}
	w.killed = true
	w.state = StateStopping
	if err := killGroup(w.pid); err != nil {
		p.cfg.Logger.Debug("kill worker", "pid", w.pid, "error", err)
	}
}

// workerExited queues ex for the run goroutine. The pump calls it: it does
// not block.
func (p *Pool) workerExited(ex exitEvent) {
	p.exitMu.Lock()
	p.exited = append(p.exited, ex)
	p.exitMu.Unlock()
	select {
	case p.exitc <- struct{}{}:
	default: // a token is there already
	}
}

// takeExited returns the exits queued since the last call.
func (p *Pool) takeExited() []exitEvent {
	p.exitMu.Lock()
	defer p.exitMu.Unlock()
	ex := p.exited
	p.exited = nil
	return ex
}

func (p *Pool) handleExit(ex exitEvent, now time.Time) {
	st, _ := ex.proc.Wait() // reap: the process has exited, so this does not block
	w := p.workers[ex.pid]
	if w == nil {
		return
	}
	delete(p.workers, ex.pid)
	code, sig := exitInfo(st)
	lived := now.Sub(w.started)
	ev := Event{Kind: EventExit, PID: w.pid, Slot: w.slot, Requests: w.requests, ExitCode: code, Signal: sig}
	desc := describeExit(code, sig)
	switch {
	case w.cause == "ready-timeout", w.cause == "" && (lived < p.cfg.StartPeriod || !w.ready):
		ev.Cause = "failed-start"
		if w.cause == "ready-timeout" {
			ev.Cause = "ready-timeout"
		}
		p.observe(ev)
		if !p.stopping {
			p.restarts++
			p.cfg.Logger.Warn("worker failed to start", "pid", w.pid, "exit", desc, "after", lived.Round(time.Millisecond))
			if ev.Cause == "failed-start" { // a ready timeout was counted when it fired
				p.failedStart(now, w.attempt)
			}
		}
		return
	case w.cause != "":
		ev.Cause = w.cause
		if w.cause == "watchdog" && !p.stopping {
			p.restarts++
		}
		lvl := hclog.Debug
		if w.cause == "watchdog" || w.killed {
			lvl = hclog.Warn
		}
		p.cfg.Logger.Log(lvl, "worker exited", "pid", w.pid, "cause", w.cause, "exit", desc, "requests", w.requests)
	default:
		ev.Cause = "crashed"
		if code == 0 && sig == "" {
			ev.Cause = "exited"
		}
		p.restarts++
		p.cfg.Logger.Warn("worker exited unexpectedly; replacing it", "pid", w.pid, "exit", desc, "uptime", lived.Round(time.Millisecond))
	}
	p.observe(ev)
}

// failedStart counts a failed start of the given attempt (round): the
// workers started together fail together and count once.
func (p *Pool) failedStart(now time.Time, attempt int) {
	if attempt != p.attempt || p.fatal {
		return
	}
	p.attempt++
	p.failedStarts++
	if p.failedStarts >= p.cfg.StartRetries {
		p.fatal = true
		p.cfg.Logger.Error("daemon failed to start; giving up until `nsfd restart` or a config change",
			"failed_starts", p.failedStarts, "start_retries", p.cfg.StartRetries)
		return
	}
	backoff := p.cfg.BackoffInitial << (p.failedStarts - 1)
	if backoff > p.cfg.BackoffMax || backoff <= 0 {
		backoff = p.cfg.BackoffMax
	}
	p.nextSpawn = now.Add(backoff)
	p.cfg.Logger.Warn("backing off before the next start",
		"retry", strconv.Itoa(p.failedStarts+1)+"/"+strconv.Itoa(p.cfg.StartRetries), "backoff", backoff)
}

func (p *Pool) snapshot() Status {
	st := Status{
		Name:         p.cfg.Name,
		State:        p.state,
		Policy:       p.cfg.Policy,
		Spawns:       p.spawns,
		Restarts:     p.restarts,
		FailedStarts: p.failedStarts,
		Requests:     p.requests,
		Malformed:    p.malformed,
		Since:        p.since,
	}
	for _, l := range p.cfg.Listeners {
		st.Listeners = append(st.Listeners, l.String())
	}
	for _, w := range p.workers {
		st.Workers = append(st.Workers, WorkerStatus{
			PID: w.pid, Slot: w.slot, State: w.state.String(), Requests: w.requests, Started: w.started, Status: w.status,
		})
	}
	sortWorkers(st.Workers)
	return st
}
