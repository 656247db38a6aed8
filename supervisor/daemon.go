package supervisor

import (
	"context"
	"slices"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/registry"
)

// startDaemon binds dm's listeners (keeping those it still holds: scaled
// to 0) and starts its pool at its policy (its scale, if any).
func (s *Supervisor) startDaemon(ctx context.Context, dm *daemon) error {
	d := dm.cfg
	exec := execOptions(d)
	ls, err := s.bindListeners(ctx, d, exec, dm.listeners)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		s.closeAll(notIn(ls, dm.listeners)) // those it held stay, as it does
		return err
	}
	pc := s.poolConfig(d, ls, exec)
	pc.Policy = s.policy(dm, d)
	pool, err := s.opts.NewPool(pc)
	if err != nil {
		return fail(err)
	}
	if err := pool.Start(ctx); err != nil {
		return fail(err)
	}
	s.closeAll(notIn(dm.listeners, ls)) // its file dropped them
	dm.pool, dm.listeners = pool, ls
	s.hooks.set(d.Name, hookCommands(d))
	s.health.set(d.Name, healthTargetOf(d, ls))
	s.reg.define(record(d, ls))
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.String()
	}
	s.log.Named(d.Name).Info("daemon started", "listeners", addrs, "min_servers", pc.Policy.MinServers, "max_servers", pc.Policy.MaxServers)
	return nil
}

// notIn returns the listeners of ls that are not in other.
func notIn(ls, other []*prefork.Listener) []*prefork.Listener {
	var out []*prefork.Listener
	for _, l := range ls {
		if !slices.Contains(other, l) {
			out = append(out, l)
		}
	}
	return out
}

// hookCommands is d's own hooks, never nil (nil tells hooks the daemon is
// gone).
func hookCommands(d *config.Daemon) config.HookCommands {
	if d.Hooks == nil {
		return config.HookCommands{}
	}
	return d.Hooks
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
		nl, err := s.bind(ctx, spec) // prefork.Bind, or a socket from systemd (sdsockets.go)
		if err != nil {
			s.closeAll(fresh)
			return nil, busyPort(l.Addr, err)
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
