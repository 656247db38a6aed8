package supervisor

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/nsfd/nsfd/prefork"
)

// Readiness-gated dependencies and fatal_retry.
//
// A daemon that requires others starts its workers only once each of them
// runs (a worker ready). Until then it is held: no pool, no listener, no
// registry row, state "waiting" with the reason ("waiting for db: fatal").
// A running daemon whose required daemon goes fatal, is stopped, removed
// or held in its turn is drained (before that daemon, when it is being
// stopped) and held again; it starts by itself once they all run. after
// only orders: starts follow it, stops go the other way, nothing waits.
//
// The gate runs on Run's goroutine after each reload, each Start and Stop,
// and whenever a pool changes state (the pools' observer kicks it): it
// reads the pools' states, so that no event needs to arrive in order.
//
// A pool gone fatal is restarted from scratch after its daemon's
// fatal_retry, by the same pass.

// kickGate asks Run's loop to run the gate; it never blocks.
func (s *Supervisor) kickGate() {
	select {
	case s.gateKick <- struct{}{}:
	default:
	}
}

// gate starts the held daemons whose requirements run, holds the running
// ones whose requirements went, and schedules the fatal retries.
func (s *Supervisor) gate(ctx context.Context) {
	states := s.poolStates(ctx)
	var hold []*daemon
	for _, d := range s.startOrder() {
		if d.draining {
			continue
		}
		ready, why := s.requirementsRun(d, states)
		switch {
		case d.held && ready:
			d.held, d.waiting = false, ""
			s.log.Named(d.cfg.Name).Info("every required daemon runs; starting")
			if err := s.startOrWait(ctx, d); err != nil { // a busy port waits (portwait.go)
				d.held, d.waiting = true, "cannot start: "+err.Error()
				s.log.Named(d.cfg.Name).Error("cannot start daemon", "error", err)
				continue
			}
			if d.pool != nil {
				states[d.cfg.Name] = prefork.PoolStarting
			}
		case d.held:
			if d.waiting != why {
				s.log.Named(d.cfg.Name).Info("waiting", "for", why)
			}
			d.waiting = why
		case d.pool != nil && s.requirementGone(d, states) != "":
			hold = append(hold, d)
		case d.pool != nil && states[d.cfg.Name] == prefork.PoolFatal:
			s.scheduleRetry(ctx, d)
		}
	}
	if len(hold) > 0 {
		s.holdDaemons(hold, states)
	}
}

// poolStates reads the state of every daemon's pool.
func (s *Supervisor) poolStates(ctx context.Context) map[string]prefork.PoolState {
	out := map[string]prefork.PoolState{}
	for name, d := range s.daemons {
		if d.pool == nil || d.draining {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := d.pool.Brief(sctx)
		cancel()
		if err == nil {
			out[name] = st.State
		}
	}
	return out
}

// requirementsRun reports whether every daemon d requires runs, or names
// the first that does not and why.
func (s *Supervisor) requirementsRun(d *daemon, states map[string]prefork.PoolState) (bool, string) {
	for _, r := range d.cfg.Requires {
		if why := s.notRunning(r, states); why != "" {
			return false, r + ": " + why
		}
	}
	return true, ""
}

// requirementGone names a daemon d requires that went away — fatal,
// stopped, removed, held or stopping — or returns "". A requirement that is
// starting or backing off is not gone: its dependents keep running.
func (s *Supervisor) requirementGone(d *daemon, states map[string]prefork.PoolState) string {
	for _, r := range d.cfg.Requires {
		switch why := s.notRunning(r, states); why {
		case "", prefork.PoolStarting.String(), prefork.PoolBackoff.String():
		default:
			return r + ": " + why
		}
	}
	return ""
}

// notRunning says why the daemon name does not run, or "" if it does.
func (s *Supervisor) notRunning(name string, states map[string]prefork.PoolState) string {
	r := s.daemons[name]
	switch {
	case r == nil:
		return "not configured"
	case r.draining:
		return "stopping"
	case r.held:
		return "waiting"
	case r.portWait != nil:
		return "waiting for " + r.portWait.addr
	case r.zero():
		return "scaled to 0"
	case r.pool == nil:
		return "stopped"
	}
	st, ok := states[name]
	if !ok {
		return "no state"
	}
	if st == prefork.PoolRunning || st == prefork.PoolIdle {
		return ""
	}
	return st.String()
}

// holdDaemons drains ds, whose requirements went, dependents first, and
// holds them until the gate sees their requirements run again.
func (s *Supervisor) holdDaemons(ds []*daemon, states map[string]prefork.PoolState) {
	for _, d := range ds {
		why := s.requirementGone(d, states)
		d.waiting = why
		s.log.Named(d.cfg.Name).Warn("a required daemon went; stopping until it runs again", "because", why)
	}
	s.drain(ds, func(d *daemon) {
		d.pool, d.listeners, d.held = nil, nil, true
		s.reg.remove(d.cfg.Name)
		s.kickGate()
	})
}

// runningDependents returns the running daemons that require one of ds,
// directly or through another, not counting ds.
func (s *Supervisor) runningDependents(ds []*daemon) []*daemon {
	in := map[string]bool{}
	for _, d := range ds {
		in[d.cfg.Name] = true
	}
	var out []*daemon
	for grew := true; grew; {
		grew = false
		for _, d := range s.daemons {
			if in[d.cfg.Name] || d.pool == nil || d.draining {
				continue
			}
			for _, r := range d.cfg.Requires {
				if in[r] {
					in[d.cfg.Name], grew = true, true
					out = append(out, d)
					break
				}
			}
		}
	}
	return out
}

// startOrder lists the daemons so that each comes after those it requires
// or is after (the ones configured); a cycle, which config refuses, ends
// the list in name order.
func (s *Supervisor) startOrder() []*daemon {
	names := make([]string, 0, len(s.daemons))
	for n := range s.daemons {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*daemon
	done := map[string]bool{}
	for len(out) < len(names) {
		progress := false
		for _, n := range names {
			if done[n] {
				continue
			}
			d := s.daemons[n]
			if slices.ContainsFunc(d.cfg.Before(), func(b string) bool { return s.daemons[b] != nil && !done[b] && b != n }) {
				continue
			}
			done[n], progress = true, true
			out = append(out, d)
		}
		if !progress {
			for _, n := range names {
				if !done[n] {
					done[n] = true
					out = append(out, s.daemons[n])
				}
			}
		}
	}
	return out
}

// scheduleRetry restarts d's fatal pool after its fatal_retry, once.
func (s *Supervisor) scheduleRetry(ctx context.Context, d *daemon) {
	if d.cfg.FatalRetry <= 0 || d.retry != nil {
		return
	}
	pool := d.pool
	d.retryAt = time.Now().Add(d.cfg.FatalRetry)
	s.log.Named(d.cfg.Name).Warn("fatal; trying again after fatal_retry", "fatal_retry", d.cfg.FatalRetry, "at", d.retryAt.Format(time.RFC3339))
	d.retry = time.AfterFunc(d.cfg.FatalRetry, func() {
		_ = s.do(ctx, func(runCtx context.Context) {
			d.retry, d.retryAt = nil, time.Time{}
			if s.daemons[d.cfg.Name] != d || d.pool != pool || d.draining {
				return // stopped, restarted or replaced meanwhile
			}
			s.log.Named(d.cfg.Name).Info("fatal_retry: starting again")
			go func() {
				if err := pool.Restart(runCtx); err != nil {
					s.log.Named(d.cfg.Name).Error("fatal_retry", "error", err)
				}
			}()
		})
	})
}

// cancelRetry drops d's pending fatal retry.
func (d *daemon) cancelRetry() {
	if d.retry != nil {
		d.retry.Stop()
		d.retry, d.retryAt = nil, time.Time{}
	}
}
