package supervisor

import (
	"context"
	"io"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/worker"
)

// Pool is what the master needs of a daemon's pool of workers:
// prefork.Pool, or a fake in tests (Options.NewPool). Every method that
// waits for the pool takes a context.
type Pool interface {
	// Start starts the pool: min_servers workers at once.
	Start(ctx context.Context) error
	// Stop drains the pool and returns once every worker has exited, or,
	// when ctx ends first, kills the rest and returns ctx's error. It is
	// idempotent.
	Stop(ctx context.Context) error
	// Restart rolls the workers: new ones first, the old ones stopped once
	// the new are ready. A fatal pool starts again.
	Restart(ctx context.Context) error
	// Update moves the pool to cfg (a reload that changed more than pool
	// sizes) by rolling its workers; the name and the notify socket stay.
	Update(ctx context.Context, cfg prefork.Config) error
	// SetPolicy applies new pool sizes and max_requests in place (a reload
	// that changed only those): no worker restarts.
	SetPolicy(ctx context.Context, o prefork.PolicyOptions, maxRequests, jitter int) error
	// Resize replaces the pool sizes with what f makes of them, in one step
	// that no other resize interleaves with, and returns the new ones; f's
	// error, or that of the result's validation, changes nothing.
	Resize(ctx context.Context, f func(prefork.PolicyOptions) (prefork.PolicyOptions, error)) (prefork.PolicyOptions, error)
	// Status is a snapshot of the pool; a stopped pool says so.
	Status(ctx context.Context) (prefork.Status, error)
	// Brief is Status without the accounting (Resources), cheap with
	// many workers: what the master reads for itself.
	Brief(ctx context.Context) (prefork.Status, error)
	// Settled is closed once the pool has first come up, gone fatal or
	// stopped.
	Settled() <-chan struct{}
}

var _ Pool = (*prefork.Pool)(nil)

// newPreforkPool is the default Options.NewPool.
func newPreforkPool(cfg prefork.Config) (Pool, error) {
	p, err := prefork.NewPool(cfg)
	if err != nil {
		return nil, err // not a Pool holding a nil *prefork.Pool
	}
	return p, nil
}

// poolConfig is the pool configuration of daemon d on listeners ls.
func (s *Supervisor) poolConfig(d *config.Daemon, ls []*prefork.Listener, exec prefork.ExecOptions) prefork.Config {
	cmd := d.Command
	if d.Builtin != "" {
		cmd = append([]string{s.opts.Shim[0], BuiltinArg, d.Builtin}, d.Command...)
	}
	name := d.Name
	cg, err := s.opts.Cgroups.Daemon(name, limitsOf(d))
	if err != nil {
		s.log.Named(name).Warn("resource limits not applied", "error", err)
	}
	return prefork.Config{
		Cgroup:            cg,
		Name:              name,
		Node:              s.master.NodeName,
		Command:           cmd,
		Env:               append(s.frameworkEnv(d), d.Env...),
		Listeners:         ls,
		NotifyPath:        s.master.NotifyPath(name),
		Notify:            d.Type == config.TypeNotify,
		NotifyAll:         d.NotifyAccess == config.NotifyAccessAll,
		Policy:            policyOf(d),
		MaxRequests:       d.MaxRequests,
		MaxRequestsJitter: d.MaxRequestsJitter,
		MaxRSS:            d.Resources.MaxRSS,
		IdleTimeout:       d.IdleTimeout,
		ReadyTimeout:      d.ReadyTimeout,
		GracefulTimeout:   d.GracefulTimeout,
		StartPeriod:       d.StartPeriod,
		StartRetries:      d.StartRetries,
		BackoffInitial:    d.BackoffInitial,
		BackoffMax:        d.BackoffMax,
		Watchdog:          d.Watchdog,
		Preload:           d.Preload,
		Exec:              exec,
		Procs:             s.opts.Procs,
		Shim:              s.opts.Shim,
		Logger:            s.log.Named(name),
		Output: func(pid int, stream string) io.WriteCloser {
			return s.sink.LineWriter(name, pid, stream)
		},
		Observer: s.observe,
	}
}

// frameworkEnv tells every worker where the registry is (the master's
// resolver socket, and the registry itself for the queue's spool) and how
// its daemon encodes messages, so framework daemons (and the built-in
// queue) find each other by name. The registry's DSN, which may carry a
// password, goes only to a builtin (the queue opens the registry) or, with
// no resolver socket to resolve through, to every worker.
func (s *Supervisor) frameworkEnv(d *config.Daemon) []string {
	r := s.master.Registry
	env := []string{
		worker.EnvRegistryType + "=" + r.Type,
		worker.EnvRegistryMaxAge + "=" + (3 * r.Heartbeat).String(),
		worker.EnvEncoding + "=" + d.Encoding,
	}
	if d.Builtin != "" || s.resolverPath == "" {
		env = append(env, worker.EnvRegistryDSN+"="+r.DSN)
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

// limitsOf is daemon d's control-group limits.
func limitsOf(d *config.Daemon) prefork.Limits {
	r := d.Resources
	return prefork.Limits{
		MemoryMax:  r.MemoryMax,
		MemoryHigh: r.MemoryHigh,
		PidsMax:    int64(r.PidsMax),
		CPUWeight:  r.CPUWeight,
		CPUMax:     r.CPUMax,
	}
}
