package prefork

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	// NotifyAll (notify_access = all): a notify message from any process
	// in a worker's tree counts for the worker — its control group, else
	// its descendants (notify_access.go). Off: the worker's own alone.
	NotifyAll bool

	Policy            PolicyOptions
	MaxRequests       int   // requests (REQUESTS=, else BUSY=1 count) after which a worker is replaced; 0: unlimited
	MaxRequestsJitter int   // each worker's limit is MaxRequests + rand[0, jitter]
	MaxRSS            int64 // bytes: a worker whose resident memory stays above it is replaced like at max_requests; 0: never
	// IdleTimeout: with Policy.MinServers 0 the pool starts on demand (no
	// worker until a listener is readable) and retires every worker after
	// this long without a request; 0: once started, they stay.
	IdleTimeout time.Duration

	ReadyTimeout    time.Duration // type = notify: kill a worker not ready by then
	GracefulTimeout time.Duration // SIGTERM, then SIGKILL after this
	StartPeriod     time.Duration // a worker exiting sooner is a failed start
	StartRetries    int           // failed starts in a row before the pool goes fatal
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	Watchdog        time.Duration // kill a ready worker silent for this long; 0: off
	// Preload: the workers are forked by a fork-server, the daemon's
	// program started once (preload.go); needs the pump backend.
	Preload bool

	Exec ExecOptions
	// Cgroup is the daemon's control group (Cgroups.Daemon); nil: none.
	// Each worker gets a group of its own below it, joined before its
	// command runs and killed when the worker has exited. An Update keeps
	// the pool's own group and applies the new one's limits to it.
	Cgroup *DaemonCgroup
	// Procs starts the workers and watches them (their output, their
	// exits); a master shares one among all its pools. Start needs it; an
	// Update keeps the pool's own.
	Procs Procs
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
	Requests int       // requests the worker served, for EventExit
	Cause    ExitCause // for EventExit: why it exited
	ExitCode int       // -1 when killed by a signal
	Signal   string    // the signal that ended it, if any
}

// Pool runs one daemon's workers. One goroutine owns all its state; the
// methods send it requests.
type Pool struct {
	cfg Config

	sys  poolSys
	reqs chan func()
	stop chan struct{}
	done chan struct{}

	startOnce sync.Once
	stopOnce  sync.Once
	settled   chan struct{} // closed once the pool first runs, goes fatal or stops
	settle    sync.Once
	nsock     notifyEndpoints
	board     *loadBoard // nil: none
	notes     noteSource // the notify socket's datagrams; noNotes without one
	sockDone  chan struct{}

	exitMu sync.Mutex    // guards exited
	exited []exitEvent   // from the process backend, for the run goroutine
	exitc  chan struct{} // a token once exited is not empty

	// Owned by the run goroutine.
	workers         map[int]*worker
	gen             int
	state           PoolState
	since           time.Time
	stopping        bool
	fatal           bool
	attempt         int
	failedStarts    int
	nextSpawn       time.Time
	lastActive      time.Time     // a worker last reported BUSY, or a request count that moved
	dormant         bool          // on demand, and no worker wanted until a listener is readable (pool_ondemand.go)
	activeAt        time.Time     // when a connection last woke the pool
	listenWake      chan struct{} // a listener is readable while dormant
	listenWatching  bool          // a goroutine waits for it
	spawns          int
	oomKills        int           // workers the OOM killer killed
	nextRSS         time.Time     // when max_rss is checked next
	rssRecycles     int           // workers replaced for max_rss
	spawnedCg       *workerCgroup // the group startProcess made for the worker spawn is starting
	forkSrv         *forkServer   // with Config.Preload: the fork-server of the current generation, if started
	forkLoading     *forkServer   // a fork-server loading the application, whose outcome forkLoaded brings
	forkLoaded      chan forkServerLoad
	forkRetiring    sync.WaitGroup // fork-servers of earlier generations being stopped
	restarts        int
	requests        int
	malformed       int
	malformedLogged time.Time // when a dropped datagram was last logged
	senders         *senders  // who datagrams from processes other than a worker count for; nil until one comes
	wake            time.Time // the next deadline, if any
	expect          time.Time // when the loop means to run next at the latest, if a deadline is armed
	graceFrom       time.Time // the end of the master's last stall: no deadline runs from before it
}

// poolSys is what a pool asks of the clock and the operating system;
// tests replace it to drive the pool's logic without processes or sleeps.
type poolSys struct {
	now       func() time.Time
	start     func(ctx context.Context, p *Pool, slot, maxReq int) (*Process, error) // start a worker on Config.Procs
	signal    func(proc *Process, sig os.Signal) error                               // to the worker itself
	killGroup func(pid int) error                                                    // SIGKILL to the worker's process group (its tree, on a TreeKiller)
	// rss, if set, returns a worker's resident memory in bytes (for max_rss).
	rss func(pid int) (int64, error)
	// procUsage, if set, returns what a worker alone uses, for status
	// without control groups.
	procUsage func(pid int) (GroupStats, error)
	// leftovers, if set, kills what is left of an exited worker's tree
	// before the pool reaps it.
	leftovers func(pid int) error
}

// realSys is the real clock, the process backend and kill(2).
var realSys = poolSys{
	now: time.Now,
	start: func(ctx context.Context, p *Pool, slot, maxReq int) (*Process, error) {
		return p.startProcess(ctx, slot, maxReq)
	},
	signal:    func(proc *Process, sig os.Signal) error { return proc.Signal(sig) },
	killGroup: killGroup,
	rss:       residentBytes,
	procUsage: procUsage,
}

// noteSource holds the notify datagrams read for a pool, in the order the
// kernel queued them.
type noteSource interface {
	// ready returns a channel that has a token once notes are waiting.
	ready() <-chan struct{}
	// take returns the notes waiting, oldest first. With flush it first
	// reads every datagram the kernel holds, so that nothing sent before
	// the call is left unread.
	take(flush bool) []note
}

// notifyEndpoints is the master's end of a daemon's NOTIFY_SOCKET: one
// socket for every worker (Linux's notifySocket), or one a worker
// (workerSockets, elsewhere).
type notifyEndpoints interface {
	noteSource
	// endpoint returns the NOTIFY_SOCKET of a worker about to start, and
	// what to call with its pid once it has (0: it did not).
	endpoint() (string, func(pid int))
	// release forgets a worker that was reaped.
	release(pid int)
	// read reads datagrams until done is closed or the socket is.
	read(done <-chan struct{})
	// own gives the socket files to the workers' uid and gid.
	own(uid, gid int) error
	close() error
}

// listenNotifyFunc opens a pool's notify endpoints: listenNotify, or in
// tests (NSFD_TEST_NOTIFY=per-worker) on Linux the sockets macOS and
// FreeBSD use.
var listenNotifyFunc = func(path string, uid, gid int) (notifyEndpoints, error) {
	s, err := listenNotify(path, uid, gid)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// noNotes is the noteSource of a pool without a notify socket.
type noNotes struct{}

var _ noteSource = noNotes{}

func (noNotes) ready() <-chan struct{} { return nil }
func (noNotes) take(bool) []note       { return nil }

// NewPool checks cfg and returns a pool that is not started yet.
func NewPool(cfg Config) (*Pool, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sys := realSys
	if tk, ok := cfg.Procs.(TreeKiller); ok {
		sys.killGroup, sys.leftovers = tk.KillTree, tk.KillTree
	} else {
		sys.leftovers = killGroup
	}
	return &Pool{
		cfg:        cfg,
		sys:        sys,
		notes:      noNotes{},
		exitc:      make(chan struct{}, 1),
		listenWake: make(chan struct{}, 1),
		forkLoaded: make(chan forkServerLoad, 1),
		dormant:    cfg.Policy.MinServers == 0,
		reqs:       make(chan func()),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		sockDone:   make(chan struct{}),
		settled:    make(chan struct{}),
		workers:    make(map[int]*worker),
		state:      PoolStarting,
	}, nil
}

// Start opens the pool's notify socket and starts its goroutine, which
// spawns min_servers workers at once on Config.Procs.
func (p *Pool) Start(ctx context.Context) error {
	var err error
	p.startOnce.Do(func() {
		if err = ctx.Err(); err != nil {
			close(p.done)
			return
		}
		if p.cfg.Procs == nil {
			err = fmt.Errorf("pool %s: no process backend (Config.Procs)", p.cfg.Name)
			close(p.done)
			return
		}
		if p.cfg.NotifyPath != "" {
			p.nsock, err = listenNotifyFunc(p.cfg.NotifyPath, p.cfg.Exec.UID, p.cfg.Exec.GID)
			if err != nil {
				p.nsock = nil
				close(p.done)
				return
			}
			p.notes = p.nsock
			go p.nsock.read(p.sockDone)
			p.openBoard(false)
		}
		p.since = p.sys.now()
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

// Resize replaces the pool-size options with what f makes of the current
// ones, in place, as one step on the pool's goroutine (two resizes never
// interleave): `nsfd scale` and SIGTTIN/SIGTTOU. The result must pass
// PolicyOptions.Validate; f's error or the validation's is returned and
// nothing changes. It returns the new options.
func (p *Pool) Resize(ctx context.Context, f func(PolicyOptions) (PolicyOptions, error)) (PolicyOptions, error) {
	var (
		out PolicyOptions
		err error
	)
	if derr := p.do(ctx, func() {
		var o PolicyOptions
		if o, err = f(p.cfg.Policy); err != nil {
			return
		}
		if err = o.Validate(); err != nil {
			return
		}
		p.cfg.Policy, out = o, o
		p.cfg.Logger.Info("scaled", "min_servers", o.MinServers, "max_servers", o.MaxServers)
	}); derr != nil {
		return out, derr
	}
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
// the new ones are ready. The notify socket, the name and the process backend
// stay. A fatal pool starts again.
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
			if berr := p.board.own(cfg.Exec.UID, cfg.Exec.GID); berr != nil {
				// Balancing is an optimisation: the new workers run without it.
				p.cfg.Logger.Warn("load board: workers of the new user cannot balance connections", "error", berr)
			}
		}
		cfg.Name, cfg.NotifyPath, cfg.Procs = p.cfg.Name, p.cfg.NotifyPath, p.cfg.Procs
		if p.cfg.Cgroup != nil && cfg.Cgroup != nil {
			if err := p.cfg.Cgroup.SetLimits(cfg.Cgroup.Limits()); err != nil {
				p.cfg.Logger.Warn("resource limits", "error", err)
			}
		}
		if p.cfg.Cgroup != nil {
			cfg.Cgroup = p.cfg.Cgroup
		}
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
		if w.cause == CauseNone {
			w.replaced = true
		}
	}
}
