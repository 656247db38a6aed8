package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/prefork"
)

// Options configure a Supervisor.
type Options struct {
	EtcDir string
	// Shim is the argv prefix that runs prefork's exec shim (and nsfd's
	// builtins); default: this executable.
	Shim []string
	// LogStderr sends the central log to stderr whatever nsfd.ini says (tests, `run --log-stderr`).
	LogStderr bool
}

// Supervisor is the master: it owns one pool per daemon and the central log.
// Its state is owned by the goroutine running Run; other goroutines send it
// requests.
type Supervisor struct {
	opts   Options
	master *config.Master
	sink   *logging.Sink
	log    hclog.Logger

	reqs chan func()

	// Owned by Run's goroutine.
	daemons map[string]*daemon
	errs    map[string]error // daemon file -> config error
}

// daemon is one running daemon: its config, its listeners and its pool.
type daemon struct {
	cfg       *config.Daemon
	listeners []*prefork.Listener
	pool      *prefork.Pool
	state     prefork.PoolState
}

// New loads the configuration in opts.EtcDir and opens the central log.
// A broken nsfd.ini is an error; a broken daemon file is logged and that
// daemon is left out.
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
	lc := logging.Config{
		Target:   m.Log.Target,
		File:     m.Log.File,
		Format:   m.Log.Format,
		Level:    m.Log.Level,
		MaxSize:  m.Log.MaxSize,
		MaxFiles: m.Log.MaxFiles,
	}
	if opts.LogStderr {
		lc.Target = "stderr"
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
		reqs:    make(chan func()),
		daemons: make(map[string]*daemon),
		errs:    make(map[string]error),
	}
	for _, w := range m.Warnings {
		s.log.Warn(w.Error())
	}
	return s, nil
}

// Logger is the master's logger.
func (s *Supervisor) Logger() hclog.Logger { return s.log }

// Run starts every daemon and supervises them until ctx ends, then drains
// every daemon (dependents first) and closes the central log.
func (s *Supervisor) Run(ctx context.Context) error {
	defer s.closeSink()
	if err := os.MkdirAll(s.master.RunDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	set, err := config.Load(s.opts.EtcDir)
	if err != nil {
		return err
	}
	s.log.Info("nsfd starting", "etc", s.opts.EtcDir, "node", s.master.NodeName, "pid", os.Getpid(), "daemons", len(set.Daemons))
	for file, err := range set.Errors {
		s.errs[file] = err
		s.log.Error("daemon file not loaded", "file", file, "error", err)
	}
	for _, d := range slices.Concat(set.StartOrder()...) {
		for _, w := range d.Warnings {
			s.log.Named(d.Name).Warn(w.Error())
		}
		if err := s.startDaemon(ctx, d); err != nil {
			s.log.Error("cannot start daemon", "daemon", d.Name, "error", err)
		}
	}
	for {
		select {
		case f := <-s.reqs:
			f()
		case <-ctx.Done():
			s.log.Info("stopping: draining every daemon")
			s.stopAll()
			s.log.Info("nsfd stopped")
			return nil
		}
	}
}

func (s *Supervisor) closeSink() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.sink.Close(ctx)
}

// startDaemon binds d's listeners and starts its pool.
func (s *Supervisor) startDaemon(ctx context.Context, d *config.Daemon) error {
	log := s.log.Named(d.Name)
	exec, err := execOptions(d)
	if err != nil {
		return err
	}
	var ls []*prefork.Listener
	for _, spec := range d.Listeners {
		l, err := prefork.Bind(ctx, listenSpec(d, spec, exec))
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return err
		}
		ls = append(ls, l)
	}
	dm := &daemon{cfg: d, listeners: ls, state: prefork.PoolStarting}
	pool, err := prefork.NewPool(s.poolConfig(d, ls, exec, log, dm))
	if err != nil {
		closeAll(ls)
		return err
	}
	if err := pool.Start(ctx); err != nil {
		closeAll(ls)
		return err
	}
	dm.pool = pool
	s.daemons[d.Name] = dm
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.String()
	}
	log.Info("daemon started", "listeners", addrs, "min_servers", d.MinServers)
	return nil
}

func (s *Supervisor) poolConfig(d *config.Daemon, ls []*prefork.Listener, exec prefork.ExecOptions, log hclog.Logger, dm *daemon) prefork.Config {
	cmd := d.Command
	if d.Builtin != "" {
		cmd = append([]string{s.opts.Shim[0], BuiltinArg, d.Builtin}, d.Command...)
	}
	return prefork.Config{
		Name:       d.Name,
		Node:       s.master.NodeName,
		Command:    cmd,
		Env:        d.Env,
		Listeners:  ls,
		NotifyPath: filepath.Join(s.master.RunDir, "notify", d.Name+".sock"),
		Notify:     d.Type == config.TypeNotify,
		Policy: prefork.PolicyOptions{
			MinServers:      d.MinServers,
			MaxServers:      d.MaxServers,
			MinSpareServers: d.MinSpareServers,
			MaxSpareServers: d.MaxSpareServers,
			MinChildTTL:     d.MinChildTTL,
		},
		MaxRequests:       d.MaxRequests,
		MaxRequestsJitter: d.MaxRequestsJitter,
		ReadyTimeout:      d.ReadyTimeout,
		GracefulTimeout:   d.GracefulTimeout,
		StartPeriod:      d.StartPeriod,
		StartRetries:      d.StartRetries,
		BackoffInitial:    d.BackoffInitial,
		BackoffMax:        d.BackoffMax,
		Watchdog:          d.Watchdog,
		Exec:              exec,
		Shim:              s.opts.Shim,
		Logger:            log,
		Output: func(pid int, stream string, r io.Reader) {
			s.sink.Capture(d.Name, pid, stream, r)
		},
		Observer: func(e prefork.Event) { s.observe(dm, e) },
	}
}

// observe is called from a pool's goroutine: it must not block on the
// supervisor's own loop.
func (s *Supervisor) observe(dm *daemon, e prefork.Event) {
	if e.Kind == prefork.EventState {
		lvl := hclog.Info
		if e.State == prefork.PoolFatal {
			lvl = hclog.Error
		}
		s.log.Named(e.Pool).Log(lvl, "daemon state", "state", string(e.State))
	}
}

// stopAll drains every daemon, each after the daemons that require it.
func (s *Supervisor) stopAll() {
	dependents := map[string][]string{}
	for name, d := range s.daemons {
		for _, r := range d.cfg.Requires {
			dependents[r] = append(dependents[r], name)
		}
	}
	done := map[string]chan struct{}{}
	for name := range s.daemons {
		done[name] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for name, d := range s.daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[name])
			for _, dep := range dependents[name] {
				<-done[dep]
			}
			s.stopDaemon(d)
		}()
	}
	wg.Wait()
	s.daemons = map[string]*daemon{}
}

// stopDaemon drains one daemon's pool and closes its listeners.
func (s *Supervisor) stopDaemon(d *daemon) {
	// Bounded: the pool SIGKILLs after graceful_timeout; allow for reaping.
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.GracefulTimeout+10*time.Second)
	defer cancel()
	if err := d.pool.Stop(ctx); err != nil {
		s.log.Error("stop daemon", "daemon", d.cfg.Name, "error", err)
	}
	closeAll(d.listeners)
	s.log.Named(d.cfg.Name).Info("daemon stopped")
}

func closeAll(ls []*prefork.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// do runs f on Run's goroutine.
func (s *Supervisor) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case s.reqs <- func() { f(); close(ran) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNoDaemon is returned for a daemon name the master does not run.
var ErrNoDaemon = errors.New("no such daemon")

// Scale moves min_servers and max_servers of one daemon (name) or of every
// daemon (name "") by delta, as Net::Server's SIGTTIN/SIGTTOU do.
func (s *Supervisor) Scale(ctx context.Context, name string, delta int) error {
	var pools []*prefork.Pool
	err := s.do(ctx, func() {
		for n, d := range s.daemons {
			if name == "" || n == name {
				pools = append(pools, d.pool)
			}
		}
	})
	if err != nil {
		return err
	}
	if name != "" && len(pools) == 0 {
		return fmt.Errorf("scale %s: %w", name, ErrNoDaemon)
	}
	for _, p := range pools {
		if _, err := p.Scale(ctx, delta); err != nil {
			return err
		}
	}
	return nil
}

// Status returns a snapshot of every daemon, sorted by name.
func (s *Supervisor) Status(ctx context.Context) ([]prefork.Status, error) {
	var pools []*prefork.Pool
	if err := s.do(ctx, func() {
		for _, d := range s.daemons {
			pools = append(pools, d.pool)
		}
	}); err != nil {
		return nil, err
	}
	out := make([]prefork.Status, 0, len(pools))
	for _, p := range pools {
		st, err := p.Status(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ReopenLogs reopens the central log file (logrotate's SIGUSR1).
func (s *Supervisor) ReopenLogs() {
	if err := s.sink.Reopen(context.Background()); err != nil {
		s.log.Error("reopen log", "error", err)
		return
	}
	s.log.Info("log reopened")
}

// Reload re-reads etc/ and applies the difference. Not in this version:
// the request is logged and the running state is kept.
func (s *Supervisor) Reload(ctx context.Context) {
	s.log.Warn("reload requested; live reload is not available in this version, keeping the running configuration")
}
