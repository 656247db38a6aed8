package supervisor

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// A master started by an upgrade (Options.Handover) adopts what the master
// before it in this process handed over: the control and resolver sockets,
// every daemon's listeners, notify socket and running workers. Then it
// reloads, which applies whatever changed in etc/ meanwhile, as any reload.

// startOrAdopt is Run's first step: the first reload, or the adoption of a
// hand-over and a reload.
func (s *Supervisor) startOrAdopt(ctx context.Context) {
	h := s.opts.Handover
	if h == nil {
		s.reload(ctx, "start")
		return
	}
	s.adopt(ctx, h)
	s.reload(ctx, "upgraded")
}

// adopt takes over h's daemons, on Run's goroutine.
func (s *Supervisor) adopt(ctx context.Context, h *Handover) {
	now := time.Now()
	s.started = h.Started
	s.reloads = max(h.Reloads, 1) // the next reload is not the first
	s.up.mu.Lock()
	s.up.upgrades, s.up.upgradedAt, s.up.from, s.up.reason = h.Upgrades+1, now, h.FromVersion, h.Extra["reason"]
	s.up.mu.Unlock()
	byName := map[string]*config.Daemon{}
	if set, err := config.Load(s.master.Dir); err == nil {
		for _, d := range set.Daemons {
			byName[d.Name] = d
		}
	} else {
		s.log.Error("upgrade: configuration does not load", "error", err)
	}
	workers := 0
	for _, dh := range h.Daemons {
		log := s.log.Named(dh.Name)
		var ls []*prefork.Listener
		for _, lh := range dh.Listeners {
			l, err := prefork.AdoptListener(ctx, lh.Spec, lh.FD)
			if err != nil {
				log.Error("upgrade: cannot adopt listener", "error", err)
				continue
			}
			ls = append(ls, l)
		}
		d := byName[dh.Name]
		if d == nil {
			// Its file went away or broke between the hand-over and now:
			// without a config its workers cannot run on.
			log.Error("upgrade: daemon has no loadable file any more; stopping its workers")
			s.closeAll(ls)
			if dh.Pool != nil {
				killHandedOver(dh.Pool)
			}
			continue
		}
		cfg := *d
		cfg.Hash = dh.Hash // what it runs: the reload that follows applies any change
		dm := &daemon{cfg: &cfg, listeners: ls, scale: dh.Scale}
		if dh.NotifyPath == "" {
			dh.NotifyPath = s.master.NotifyPath(dh.Name)
		}
		s.adoptedNotify[dh.Name] = dh.NotifyPath
		if dh.Pool != nil {
			pc := s.poolConfig(&cfg, ls, execOptions(&cfg))
			pc.NotifyPath = dh.NotifyPath
			pc.Policy = s.policy(dm, &cfg) // its scale, handed over
			pool, err := prefork.AdoptPool(pc, *dh.Pool)
			if err != nil {
				log.Error("upgrade: cannot adopt every worker", "error", err)
			}
			if pool != nil {
				dm.pool = pool
				workers += len(dh.Pool.Workers)
				s.reg.define(record(&cfg, ls))
				s.health.set(cfg.Name, healthTargetOf(&cfg, ls))
			} else {
				killHandedOver(dh.Pool)
			}
		}
		switch {
		case dm.pool == nil && dm.zero() && len(ls) > 0: // scaled to 0: registered, not resolvable
			s.reg.define(record(&cfg, ls))
			s.reg.state(dh.Name, prefork.PoolStopped.String())
		case dm.pool == nil && dh.Pending == pendingHeld: // the gate starts it (reload)
			dm.held, dm.waiting = true, "its requirements to start"
		case dm.pool == nil && dh.Pending == pendingPort:
			s.daemons[dh.Name] = dm
			if err := s.startOrWait(ctx, dm); err != nil {
				log.Error("cannot start daemon", "error", err)
			}
		}
		s.daemons[dh.Name] = dm
	}
	s.log.Info("nsfd upgraded in place", "from", h.FromVersion, "to", s.opts.Version, "pid", os.Getpid(),
		"daemons", len(h.Daemons), "workers", workers, "handover_version", h.Version, "took", now.Sub(h.Written).Round(time.Microsecond))
}

// The hand-over's DaemonHandover.Pending values.
const (
	pendingHeld = "held" // waiting for what it requires
	pendingPort = "port" // waiting for its address (portwait.go)
)

// killHandedOver kills and reaps the workers of a pool that could not be
// adopted: nothing else would ever reap them.
func killHandedOver(ph *prefork.PoolHandover) {
	for _, w := range ph.Workers {
		if p, err := os.FindProcess(w.PID); err == nil {
			_ = p.Kill()
			_, _ = p.Wait()
		}
	}
}

// inheritedListener returns the listener for spec, the control or the
// resolver socket (which): the one an upgrade handed over, if it is bound
// at that address, else a new one.
func (s *Supervisor) inheritedListener(ctx context.Context, spec prefork.ListenSpec, which string) (*prefork.Listener, error) {
	fd, from := s.handedOverFD(which)
	if fd < 0 {
		return prefork.Bind(ctx, spec)
	}
	if from != "" && from != spec.Address {
		// Moved in nsfd.ini: bind the new address, let the old one go.
		s.log.Info("upgrade: socket moved", "from", from, "to", spec.Address)
		old, err := prefork.AdoptListener(ctx, prefork.ListenSpec{Network: spec.Network, Address: from}, fd)
		if err == nil {
			_ = old.Close()
		}
		return prefork.Bind(ctx, spec)
	}
	l, err := prefork.AdoptListener(ctx, spec, fd)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", spec.Address, err)
	}
	if err := l.Adjust(spec); err != nil {
		return nil, err
	}
	return l, nil
}

// handedOverFD returns the fd of the control or resolver socket handed
// over by an upgrade, and the path it is bound at; -1 if none.
func (s *Supervisor) handedOverFD(which string) (int, string) {
	h := s.opts.Handover
	if h == nil {
		return -1, ""
	}
	switch which {
	case "control":
		return h.ControlFD, h.Extra["control_path"]
	case "resolver":
		return h.ResolverFD, h.Extra["resolver_path"]
	}
	return -1, ""
}

// Pin keeps, in m just loaded by the master an upgrade started, what
// cannot change under running workers: run_dir and process_backend
// (masterconf.go). Call it before m is used; a nil h changes nothing.
func (h *Handover) Pin(m *config.Master) {
	if h == nil {
		return
	}
	if rd := h.Extra["run_dir"]; rd != "" {
		m.RunDir = rd
	}
	if pb, ok := h.Extra["process_backend"]; ok {
		m.ProcessBackend = pb
	}
}
