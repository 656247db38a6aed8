package supervisor

import (
	"context"
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/registry"
)

// observe is every pool's Observer: it counts the event, keeps the
// registry in step and logs state changes. It is called from a pool's
// goroutine and must not block on the supervisor's own loop.
func (s *Supervisor) observe(e prefork.Event) {
	s.metrics.observe(e)
	s.hooks.observe(e)
	s.health.observe(e)
	switch e.Kind {
	case prefork.EventSpawn:
		s.reg.workerStarted(e.Pool, e.PID, e.Slot)
	case prefork.EventExit:
		how := e.Cause.String()
		if e.Signal != "" {
			how += ": signal " + e.Signal
		} else {
			how += ": exit status " + strconv.Itoa(e.ExitCode)
		}
		s.reg.workerExited(e.Pool, e.PID, how)
		if e.Cause != prefork.CauseStopped && e.Cause != prefork.CauseRetired && e.Cause != prefork.CauseReplaced {
			s.lastExits.Store(e.Pool, how)
		}
	case prefork.EventState:
		s.kickGate()
		if e.State != prefork.PoolStopped {
			s.reg.state(e.Pool, registryState(e.State))
		}
		lvl := hclog.Info
		if e.State == prefork.PoolFatal {
			lvl = hclog.Error
		}
		s.log.Named(e.Pool).Log(lvl, "daemon state", "state", e.State.String())
	}
}

// registryState is the registry's name of a pool state: a running pool is
// what Resolve returns (registry.StateRunning); the others are stored as
// they are called.
func registryState(st prefork.PoolState) string {
	switch st {
	case prefork.PoolRunning, prefork.PoolIdle: // on demand: its listeners take clients
		return registry.StateRunning
	case prefork.PoolStopping:
		return registry.StateStopping
	}
	return st.String()
}

// workerCounters reads every daemon's workers and request counters, for
// the registrar's periodic sync.
func (s *Supervisor) workerCounters(ctx context.Context) map[string][]registry.Worker {
	st, err := s.status(ctx, "", true)
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
