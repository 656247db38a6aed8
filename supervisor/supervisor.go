package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/worker"
)

// Options configure a Supervisor beyond its configuration and its log.
type Options struct {
	// Shim is the argv prefix that runs prefork's exec shim (and nsfd's
	// builtins); default: this executable.
	Shim []string
	// Version is reported by the status API.
	Version string
	// Procs starts and watches the workers of every pool (prefork.Pump or
	// prefork.Portable); each pool gets it in prefork.Config.Procs. The
	// caller closes it after Run.
	Procs prefork.Procs
	// Cgroups are the master's control groups (prefork.OpenCgroups): each
	// daemon's pool gets its group, with the daemon's limits. Nil, or
	// degraded: none, and limits are refused.
	Cgroups *prefork.Cgroups
	// NewPool makes a daemon's pool, not started yet; default
	// prefork.NewPool.
	NewPool func(prefork.Config) (Pool, error)
	// UI, if set, is the web page: under /ui/ on the control socket, and
	// on http_addr when nsfd.ini sets it.
	UI UI
	// Handover, if set, is what the master this process was before an
	// upgrade handed over (ReadHandover): Run adopts it (adopt.go).
	Handover *Handover
	// Exec replaces the process image for an upgrade; default
	// prefork.Exec. Tests make it fail.
	Exec func(path string, argv, env []string) error
	// Inherited are the fds of the sockets systemd handed nsfd itself
	// (LISTEN_FDS): daemons whose port matches one use it (sdsockets.go).
	Inherited []int
}

// Supervisor is the master: it owns one pool per daemon. Its state is owned
// by the goroutine running Run; other goroutines send it requests.
type Supervisor struct {
	opts    Options
	master  *config.Master
	sink    *logging.Sink
	log     hclog.Logger
	metrics *metrics
	reg     *registrar
	changes *changeHub // the registry's change notifications, for the resolver socket
	hooks   *hooks     // on_fatal, on_restart, on_recover
	health  *healthChecks
	started time.Time
	// lastExits is each daemon's last unplanned worker exit ("crashed:
	// exit status 1"), for status; written by the pools' observers.
	lastExits sync.Map
	// resolverPath is the resolver socket's, passed to the workers in
	// NSFD_RESOLVER; "" if it could not be bound.
	resolverPath string

	reqs     chan func(context.Context) // run on Run's goroutine, with Run's context
	gateKick chan struct{}              // a pool changed state: run the gate (deps.go)
	quit     chan struct{}              // closed when Run stops serving requests
	drains   sync.WaitGroup             // daemons draining in the background

	// Owned by Run's goroutine.
	daemons   map[string]*daemon
	errs      map[string]error // daemon file -> config error, for files with no running daemon
	masterErr error            // nsfd.ini failed to load at the last reload
	reloads   int

	up            upgradeState      // upgrade.go
	adoptedNotify map[string]string // daemon -> notify socket path handed over by an upgrade
	sdSockets     []sdSocket        // from systemd (sdsockets.go)
}

// daemon is one daemon the master knows: its config, its listeners and its pool.
type daemon struct {
	cfg       *config.Daemon
	listeners []*prefork.Listener
	pool      Pool          // nil when stopped
	configErr error         // its file failed to load: it runs on its last good config
	draining  bool          // being stopped in the background
	drained   chan struct{} // closed when a drain ends

	// held: waiting for a daemon it requires to run (deps.go), with no
	// pool; waiting says for what.
	held    bool
	waiting string
	retry   *time.Timer // a pending fatal_retry
	retryAt time.Time

	scale *DaemonScale // `nsfd scale` (scalestate.go); nil: the file's sizes
	// keepListeners: the drain under way keeps the listeners bound (a
	// scale to 0). Set before the drain starts, cleared when it ends.
	keepListeners bool
	portWait      *portWait // a listener's address is in use: retried (portwait.go)
}

// New returns the master of m, the configuration config.LoadMaster read
// (its run directory made by PrepareRunDir), logging to sink, which the
// caller opened from m.Log and closes after Run.
func New(m *config.Master, sink *logging.Sink, opts Options) (*Supervisor, error) {
	if len(opts.Shim) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		opts.Shim = []string{exe, prefork.ShimArg}
	}
	if opts.NewPool == nil {
		opts.NewPool = newPreforkPool
	}
	opts.Handover.Pin(m) // upgrade: adopt.go
	s := &Supervisor{
		opts:     opts,
		master:   m,
		sink:     sink,
		log:      sink.Logger(),
		started:  time.Now(),
		reqs:     make(chan func(context.Context)),
		gateKick: make(chan struct{}, 1),
		quit:     make(chan struct{}),
		daemons:  make(map[string]*daemon),
		errs:     make(map[string]error),

		adoptedNotify: make(map[string]string),
	}
	s.metrics = newMetrics(s)
	s.reg = newRegistrar(m.Registry.Type, m.Registry.DSN, m.NodeName, m.Registry.Heartbeat, s.log.Named("registry"))
	s.reg.counters = s.workerCounters
	s.changes = newChangeHub(s.reg)
	s.hooks = newHooks(m.Hooks, s.log)
	s.health = newHealthChecks(s.log)
	s.health.roll, s.health.mark = s.healthRoll, s.reg.health
	for _, w := range m.Warnings {
		s.log.Warn(w.Error())
	}
	s.adoptSystemd(append(opts.Inherited, handedOverSystemd(opts.Handover)...)) // sdsockets.go
	return s, nil
}

// Run starts every daemon, serves the control socket, watches etc/, and
// supervises until ctx ends; then it drains every daemon (dependents
// first). ready, if not nil, is called once after the first start of every
// daemon.
func (s *Supervisor) Run(ctx context.Context, ready func()) error {
	ctl, err := s.listenControl(ctx)
	if err != nil {
		return err
	}
	defer ctl.close()
	s.up.ctl = ctl
	if res, err := s.listenResolver(ctx); err != nil {
		s.log.Warn("no resolver socket; workers open the registry themselves", "error", err)
	} else {
		s.resolverPath = res.path
		s.up.res = res
		defer res.close()
	}
	w, err := s.watch(ctx)
	if err != nil {
		s.log.Warn("not watching etc/ for changes; use SIGHUP or `nsfd reload`", "error", err)
	}
	s.log.Info("nsfd starting", "etc", s.master.Dir, "node", s.master.NodeName, "pid", os.Getpid(), "control", s.master.ControlSocket,
		"registry", s.master.Registry.Type+" "+registry.Redact(s.master.Registry.DSN))
	// The registry outlives the daemons' drain, so their rows go last.
	rctx, rcancel := context.WithCancel(context.Background())
	s.hooks.start()
	defer s.hooks.close()
	defer s.health.close()
	go s.reg.run(rctx)
	go s.changes.run(rctx)
	defer func() { rcancel(); <-s.reg.done }()
	var etcChanges <-chan struct{}
	if w != nil {
		etcChanges = w.changes
	}
	s.serve(ctx, etcChanges, func(ctx context.Context) {
		s.whenSettled(ctx, func() {
			s.sdReady()
			if ready != nil {
				ready()
			}
		})
		s.sdWatchdog(ctx)
	})
	return nil
}

// serve is Run's loop: the first reload, then started, then requests and
// etc/ changes until ctx ends; then it drains every daemon and returns.
func (s *Supervisor) serve(ctx context.Context, etcChanges <-chan struct{}, started func(context.Context)) {
	s.startOrAdopt(ctx)
	if started != nil {
		started(ctx)
	}
	for {
		select {
		case f := <-s.reqs:
			f(ctx)
		case <-etcChanges:
			s.reload(ctx, "etc/ changed")
		case <-s.gateKick:
			s.gate(ctx)
		case <-ctx.Done():
			close(s.quit) // from here on, requests fail fast instead of waiting for the loop
			s.sdNotify(worker.NotifyStopping)
			s.log.Info("stopping: draining every daemon")
			s.stopAll()
			s.log.Info("nsfd stopped")
			return
		}
	}
}

// whenSettled runs f on Run's goroutine once every daemon started so far
// has come up, gone fatal or stopped (bounded by its ready_timeout).
func (s *Supervisor) whenSettled(ctx context.Context, f func()) {
	var waits []<-chan struct{}
	limit := time.Duration(0)
	for _, d := range s.daemons {
		if d.pool != nil {
			waits = append(waits, d.pool.Settled())
			limit = max(limit, d.cfg.ReadyTimeout)
		}
	}
	go func() {
		timeout := time.After(limit + 5*time.Second)
		for _, w := range waits {
			select {
			case <-w:
			case <-timeout:
			case <-ctx.Done():
				return
			}
		}
		_ = s.do(ctx, func(context.Context) { f() })
	}()
}

// do runs f on Run's goroutine, with Run's context: what f starts belongs
// to the master, not to the caller, whose ctx only bounds the wait for the
// loop to take f.
func (s *Supervisor) do(ctx context.Context, f func(runCtx context.Context)) error {
	ran := make(chan struct{})
	select {
	case s.reqs <- func(runCtx context.Context) { f(runCtx); close(ran) }:
	case <-s.quit:
		return ErrShuttingDown
	case <-ctx.Done():
		return ctx.Err()
	}
	// The loop took f and runs it now: wait for it, so that f never writes
	// the caller's variables after the caller has returned.
	<-ran
	return nil
}

// ErrShuttingDown is returned for requests that arrive while the master drains.
var ErrShuttingDown = errors.New("nsfd is shutting down")

// sortedDaemons returns the known daemons sorted by name.
func (s *Supervisor) sortedDaemons() []*daemon {
	out := make([]*daemon, 0, len(s.daemons))
	for _, d := range s.daemons {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *daemon) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	return out
}
