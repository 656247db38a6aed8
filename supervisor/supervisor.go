package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/worker"
)

// Options configure a Supervisor.
type Options struct {
	EtcDir string
	// Shim is the argv prefix that runs prefork's exec shim (and nsfd's
	// builtins); default: this executable.
	Shim []string
	// LogStderr sends the central log to stderr whatever nsfd.ini says.
	LogStderr bool
	// Version is reported by the status API.
	Version string
}

// Supervisor is the master: it owns one pool per daemon and the central log.
// Its state is owned by the goroutine running Run; other goroutines send it
// requests.
type Supervisor struct {
	opts    Options
	master  *config.Master
	sink    *logging.Sink
	log     hclog.Logger
	metrics *metrics
	reg     *registrar
	changes *changeHub // the registry's change notifications, for the resolver socket
	started time.Time
	// resolverPath is the resolver socket's, passed to the workers in
	// NSFD_RESOLVER; "" if it could not be bound.
	resolverPath string

	reqs   chan func()
	quit   chan struct{}  // closed when Run stops serving requests
	drains sync.WaitGroup // daemons draining in the background

	// Owned by Run's goroutine.
	daemons   map[string]*daemon
	errs      map[string]error // daemon file -> config error, for files with no running daemon
	masterErr error            // nsfd.ini failed to load at the last reload
	reloads   int
	ctx       context.Context // Run's context
}

// daemon is one daemon the master knows: its config, its listeners and its pool.
type daemon struct {
	cfg       *config.Daemon
	listeners []*prefork.Listener
	pool      *prefork.Pool // nil when stopped
	configErr error         // its file failed to load: it runs on its last good config
	draining  bool          // being stopped in the background
	drained   chan struct{} // closed when a drain ends
}

// New loads nsfd.ini from opts.EtcDir, prepares the run directory and
// opens the central log.
func New(opts Options) (*Supervisor, error) {
	if opts.EtcDir == "" {
		opts.EtcDir = "etc"
	}
	abs, err := filepath.Abs(opts.EtcDir)
	if err != nil {
		return nil, fmt.Errorf("etc dir: %w", err)
	}
	opts.EtcDir = abs
	if len(opts.Shim) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		opts.Shim = []string{exe, prefork.ShimArg}
	}
	m, err := config.LoadMaster(opts.EtcDir)
	if err != nil {
		return nil, err
	}
	if err := prepareRunDir(m, config.CurrentUser()); err != nil {
		return nil, err
	}
	lc := logging.Config{
		Target:   m.Log.Target,
		File:     m.Log.File,
		Format:   m.Log.Format,
		Level:    m.Log.Level,
		MaxSize:  m.Log.MaxSize,
		MaxFiles: m.Log.MaxFiles,

		SyslogAddr:     m.Log.SyslogAddr,
		SyslogIdent:    m.Log.SyslogIdent,
		SyslogFacility: m.Log.SyslogFacility,
	}
	if opts.LogStderr {
		lc.Target = logging.TargetStderr
	}
	sink, err := logging.Open(lc)
	if err != nil {
		return nil, fmt.Errorf("open central log: %w", err)
	}
	s := &Supervisor{
		opts:    opts,
		master:  m,
		sink:    sink,
		log:     sink.Logger(),
		started: time.Now(),
		reqs:    make(chan func()),
		quit:    make(chan struct{}),
		daemons: make(map[string]*daemon),
		errs:    make(map[string]error),
	}
	s.metrics = newMetrics(s)
	s.reg = newRegistrar(m.Registry.Type, m.Registry.DSN, m.NodeName, m.Registry.Heartbeat, s.log.Named("registry"))
	s.reg.counters = s.workerCounters
	s.changes = newChangeHub(s.reg)
	for _, w := range m.Warnings {
		s.log.Warn(w.Error())
	}
	return s, nil
}

// Logger is the master's logger.
func (s *Supervisor) Logger() hclog.Logger { return s.log }

// Master is the master's configuration as loaded at start.
func (s *Supervisor) Master() *config.Master { return s.master }

// Run starts every daemon, serves the control socket, watches etc/, and
// supervises until ctx ends; then it drains every daemon (dependents first)
// and closes the central log. ready, if not nil, is called once after the
// first start of every daemon.
func (s *Supervisor) Run(ctx context.Context, ready func()) error {
	defer s.closeSink()
	s.ctx = ctx
	ctl, err := s.listenControl()
	if err != nil {
		return err
	}
	defer ctl.close()
	if res, err := s.listenResolver(); err != nil {
		s.log.Warn("no resolver socket; workers open the registry themselves", "error", err)
	} else {
		s.resolverPath = res.path
		defer res.close()
	}
	w, err := s.watch(ctx)
	if err != nil {
		s.log.Warn("not watching etc/ for changes; use SIGHUP or `nsfd reload`", "error", err)
	}
	s.log.Info("nsfd starting", "etc", s.opts.EtcDir, "node", s.master.NodeName, "pid", os.Getpid(), "control", s.master.ControlSocket,
		"registry", s.master.Registry.Type+" "+registry.Redact(s.master.Registry.DSN))
	// The registry outlives the daemons' drain, so their rows go last.
	rctx, rcancel := context.WithCancel(context.Background())
	go s.reg.run(rctx)
	go s.changes.run(rctx)
	defer func() { rcancel(); <-s.reg.done }()
	s.reload(ctx, "start")
	s.whenSettled(ctx, func() {
		s.sdReady()
		if ready != nil {
			ready()
		}
	})
	s.sdWatchdog(ctx)
	var events <-chan struct{}
	if w != nil {
		events = w.changes
	}
	for {
		select {
		case f := <-s.reqs:
			f()
		case <-events:
			s.reload(ctx, "etc/ changed")
		case <-ctx.Done():
			close(s.quit) // from here on, requests fail fast instead of waiting for the loop
			s.sdNotify(worker.NotifyStopping)
			s.log.Info("stopping: draining every daemon")
			s.stopAll()
			s.drains.Wait()
			s.log.Info("nsfd stopped")
			return nil
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
		_ = s.do(ctx, f)
	}()
}

func (s *Supervisor) closeSink() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.sink.Close(ctx)
}

// startDaemon binds d's listeners and starts its pool.
func (s *Supervisor) startDaemon(ctx context.Context, dm *daemon) error {
	d := dm.cfg
	exec := execOptions(d)
	ls, err := s.bindListeners(ctx, d, exec, nil)
	if err != nil {
		return err
	}
	pool, err := prefork.NewPool(s.poolConfig(dm, d, ls, exec))
	if err != nil {
		s.closeAll(ls)
		return err
	}
	if err := pool.Start(ctx); err != nil {
		s.closeAll(ls)
		return err
	}
	dm.pool, dm.listeners = pool, ls
	s.reg.define(record(d, ls))
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.String()
	}
	s.log.Named(d.Name).Info("daemon started", "listeners", addrs, "min_servers", d.MinServers)
	return nil
}

// bindListeners binds d's listeners, reusing those of reuse that listen on
// the same address (a reload keeps its sockets open).
func (s *Supervisor) bindListeners(ctx context.Context, d *config.Daemon, exec prefork.ExecOptions, reuse []*prefork.Listener) ([]*prefork.Listener, error) {
	var ls, fresh []*prefork.Listener
	for _, l := range d.Listeners {
		spec := listenSpec(d, l, exec)
		if old := findListener(reuse, spec); old != nil {
			if err := old.Adjust(spec); err != nil {
				s.closeAll(fresh)
				return nil, err
			}
			ls = append(ls, old)
			continue
		}
		nl, err := prefork.Bind(ctx, spec)
		if err != nil {
			s.closeAll(fresh)
			return nil, err
		}
		ls, fresh = append(ls, nl), append(fresh, nl)
	}
	return ls, nil
}

func findListener(ls []*prefork.Listener, spec prefork.ListenSpec) *prefork.Listener {
	for _, l := range ls {
		if l.Spec.Network == spec.Network && l.Spec.Address == spec.Address {
			return l
		}
	}
	return nil
}

func (s *Supervisor) poolConfig(dm *daemon, d *config.Daemon, ls []*prefork.Listener, exec prefork.ExecOptions) prefork.Config {
	cmd := d.Command
	if d.Builtin != "" {
		cmd = append([]string{s.opts.Shim[0], BuiltinArg, d.Builtin}, d.Command...)
	}
	name := d.Name
	return prefork.Config{
		Name:              name,
		Node:              s.master.NodeName,
		Command:           cmd,
		Env:               append(s.frameworkEnv(d), d.Env...),
		Listeners:         ls,
		NotifyPath:        s.master.NotifyPath(name),
		Notify:            d.Type == config.TypeNotify,
		Policy:            policyOf(d),
		MaxRequests:       d.MaxRequests,
		MaxRequestsJitter: d.MaxRequestsJitter,
		ReadyTimeout:      d.ReadyTimeout,
		GracefulTimeout:   d.GracefulTimeout,
		StartPeriod:       d.StartPeriod,
		StartRetries:      d.StartRetries,
		BackoffInitial:    d.BackoffInitial,
		BackoffMax:        d.BackoffMax,
		Watchdog:          d.Watchdog,
		Exec:              exec,
		Shim:              s.opts.Shim,
		Logger:            s.log.Named(name),
		Output: func(pid int, stream string) io.WriteCloser {
			return s.sink.LineWriter(name, pid, stream)
		},
		Observer: func(e prefork.Event) { s.observe(e) },
	}
}

// frameworkEnv tells every worker where the registry is (the master's
// resolver socket, and the registry itself for the queue's spool) and how
// its daemon encodes messages, so framework daemons (and the built-in
// queue) find each other by name.
func (s *Supervisor) frameworkEnv(d *config.Daemon) []string {
	r := s.master.Registry
	env := []string{
		worker.EnvRegistryType + "=" + r.Type,
		worker.EnvRegistryDSN + "=" + r.DSN,
		worker.EnvRegistryMaxAge + "=" + (3 * r.Heartbeat).String(),
		worker.EnvEncoding + "=" + d.Encoding,
	}
	if s.resolverPath != "" {
		env = append(env, worker.EnvResolver+"="+s.resolverPath)
	}
	env = append(env, secureEnv(d)...)
	return env
}

// policyOf returns d's pool-size options.
func policyOf(d *config.Daemon) prefork.PolicyOptions {
	return prefork.PolicyOptions{
		MinServers:      d.MinServers,
		MaxServers:      d.MaxServers,
		MinSpareServers: d.MinSpareServers,
		MaxSpareServers: d.MaxSpareServers,
		MinChildTTL:     d.MinChildTTL,
	}
}

// observe is called from a pool's goroutine: it must not block on the
// supervisor's own loop.
func (s *Supervisor) observe(e prefork.Event) {
	s.metrics.observe(e)
	switch e.Kind {
	case prefork.EventSpawn:
		s.reg.workerStarted(e.Pool, e.PID, e.Slot)
	case prefork.EventExit:
		how := e.Cause
		if e.Signal != "" {
			how += ": signal " + e.Signal
		} else {
			how += ": exit status " + strconv.Itoa(e.ExitCode)
		}
		s.reg.workerExited(e.Pool, e.PID, how)
	case prefork.EventState:
		if e.State != prefork.PoolStopped {
			s.reg.state(e.Pool, string(e.State))
		}
	}
	if e.Kind == prefork.EventState {
		lvl := hclog.Info
		if e.State == prefork.PoolFatal {
			lvl = hclog.Error
		}
		s.log.Named(e.Pool).Log(lvl, "daemon state", "state", string(e.State))
	}
}

// drain stops the given daemons in the background, each after those of
// them that require it, then calls done on Run's goroutine for each.
func (s *Supervisor) drain(ds []*daemon, done func(*daemon)) {
	names := map[string]*daemon{}
	for _, d := range ds {
		names[d.cfg.Name] = d
		d.draining = true
		d.drained = make(chan struct{})
	}
	dependents := map[string][]*daemon{}
	for _, d := range ds {
		for _, r := range d.cfg.Requires {
			if names[r] != nil {
				dependents[r] = append(dependents[r], d)
			}
		}
	}
	for _, d := range ds {
		s.drains.Add(1)
		go func() {
			defer s.drains.Done()
			for _, dep := range dependents[d.cfg.Name] {
				<-dep.drained
			}
			s.stopPool(d)
			close(d.drained)
			if done != nil {
				// Run may be gone at shutdown; then nobody needs the answer.
				_ = s.do(context.Background(), func() { d.draining = false; done(d) })
			}
		}()
	}
}

// record is what the registry holds of a daemon.
func record(d *config.Daemon, ls []*prefork.Listener) registry.Daemon {
	rec := registry.Daemon{Name: d.Name, Encoding: d.Encoding, ConfigHash: d.Hash}
	for _, l := range ls {
		e := registry.Endpoint{Proto: l.Proto(), Address: l.Addr.String()}
		secureEndpoint(d, &e)
		rec.Endpoints = append(rec.Endpoints, e)
	}
	return rec
}

// workerCounters reads every daemon's workers and request counters, for
// the registrar's periodic sync.
func (s *Supervisor) workerCounters(ctx context.Context) map[string][]registry.Worker {
	st, err := s.Status(ctx, "")
	if err != nil {
		return nil
	}
	out := map[string][]registry.Worker{}
	for _, d := range st.Daemons {
		ws := []registry.Worker{}
		for _, w := range d.Workers {
			ws = append(ws, registry.Worker{PID: w.PID, Slot: w.Slot, State: w.State, StartedAt: w.Started, Requests: int64(w.Requests)})
		}
		out[d.Name] = ws
	}
	return out
}

// stopAll drains every daemon and waits.
func (s *Supervisor) stopAll() {
	var ds []*daemon
	for _, d := range s.daemons {
		if d.pool != nil && !d.draining {
			ds = append(ds, d)
		}
	}
	s.drain(ds, nil)
	s.drains.Wait()
	s.daemons = map[string]*daemon{}
}

// stopPool drains one daemon's pool and closes its listeners.
func (s *Supervisor) stopPool(d *daemon) {
	if d.pool == nil {
		return
	}
	// Bounded: the pool SIGKILLs after graceful_timeout; allow for reaping.
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.GracefulTimeout+10*time.Second)
	defer cancel()
	if err := d.pool.Stop(ctx); err != nil {
		s.log.Error("stop daemon", "daemon", d.cfg.Name, "error", err)
	}
	s.closeAll(d.listeners)
	s.log.Named(d.cfg.Name).Info("daemon stopped")
}

// closeAll closes listeners; what went wrong (a socket file replaced since
// bind, which stays) is logged.
func (s *Supervisor) closeAll(ls []*prefork.Listener) {
	for _, l := range ls {
		s.closeListener(l)
	}
}

func (s *Supervisor) closeListener(l *prefork.Listener) {
	if err := l.Close(); err != nil {
		s.log.Warn("close listener", "error", err)
	}
}

// do runs f on Run's goroutine.
func (s *Supervisor) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case s.reqs <- func() { f(); close(ran) }:
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

// ErrNoDaemon is returned for a daemon name the master does not know.
var ErrNoDaemon = errors.New("no such daemon")

// ErrDaemonStopped is returned when an operation needs a running daemon.
var ErrDaemonStopped = errors.New("daemon is stopped")

// Start starts a daemon stopped with Stop.
func (s *Supervisor) Start(ctx context.Context, name string) error {
	var err error
	if derr := s.do(ctx, func() {
		d := s.daemons[name]
		switch {
		case d == nil:
			err = fmt.Errorf("start %s: %w", name, ErrNoDaemon)
		case d.draining:
			err = fmt.Errorf("start %s: still stopping; try again", name)
		case d.pool != nil:
			// Already running: nothing to do, as systemctl start.
		default:
			err = s.startDaemon(s.ctx, d)
		}
	}); derr != nil {
		return derr
	}
	return err
}

// Stop drains a daemon and closes its listeners; it stays stopped across
// reloads until Start or Restart.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	var (
		err  error
		wait chan struct{}
	)
	if derr := s.do(ctx, func() {
		d := s.daemons[name]
		switch {
		case d == nil:
			err = fmt.Errorf("stop %s: %w", name, ErrNoDaemon)
		case d.draining:
			wait = d.drained
		case d.pool == nil:
		default:
			s.drain([]*daemon{d}, func(d *daemon) {
				d.pool, d.listeners = nil, nil
				s.reg.remove(d.cfg.Name)
			})
			wait = d.drained
		}
	}); derr != nil {
		return derr
	}
	if err != nil || wait == nil {
		return err
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart rolls a running daemon's workers (new ones first, old ones
// stopped once the new are ready), or starts a stopped one. A fatal daemon
// starts again from scratch.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	var (
		pool *prefork.Pool
		err  error
	)
	if derr := s.do(ctx, func() {
		d := s.daemons[name]
		switch {
		case d == nil:
			err = fmt.Errorf("restart %s: %w", name, ErrNoDaemon)
		case d.draining:
			err = fmt.Errorf("restart %s: still stopping; try again", name)
		case d.pool == nil:
			err = s.startDaemon(s.ctx, d)
		default:
			pool = d.pool
		}
	}); derr != nil {
		return derr
	}
	if err != nil || pool == nil {
		return err
	}
	return pool.Restart(ctx)
}

// ReopenLogs reopens the central log file (logrotate's SIGUSR1).
func (s *Supervisor) ReopenLogs(ctx context.Context) error {
	if err := s.sink.Reopen(ctx); err != nil {
		s.log.Error("reopen log", "error", err)
		return err
	}
	s.log.Info("log reopened")
	return nil
}

// sortedDaemons returns the known daemons sorted by name.
func (s *Supervisor) sortedDaemons() []*daemon {
	out := make([]*daemon, 0, len(s.daemons))
	for _, d := range s.daemons {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *daemon) int {
		switch {
		case a.cfg.Name < b.cfg.Name:
			return -1
		case a.cfg.Name > b.cfg.Name:
			return 1
		}
		return 0
	})
	return out
}
