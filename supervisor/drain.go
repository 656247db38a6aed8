package supervisor

import (
	"context"
	"time"
)

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
		for _, r := range d.cfg.Before() {
			if names[r] != nil {
				dependents[r] = append(dependents[r], d)
			}
		}
	}
	for _, d := range ds {
		s.drains.Add(1)
		drained := d.drained // a later drain of d makes its own
		go func() {
			defer s.drains.Done()
			for _, dep := range dependents[d.cfg.Name] {
				<-dep.drained
			}
			s.stopPool(d)
			if done != nil {
				// Run may be gone at shutdown; then nobody needs the answer.
				_ = s.do(context.Background(), func(context.Context) { d.draining = false; done(d) })
			}
			// After the state is applied: who waited for it (Stop) finds
			// the daemon stopped, not still draining.
			close(drained)
		}()
	}
}

// drainWithDependents drains ds and, first, the running daemons that
// require them: done is called for each of ds; the dependents are held
// until what they require runs again (deps.go).
func (s *Supervisor) drainWithDependents(ds []*daemon, done func(*daemon)) {
	deps := s.runningDependents(ds)
	own := map[*daemon]bool{}
	for _, d := range ds {
		own[d] = true
		d.cancelRetry()
		d.cancelPortWait()
	}
	for _, d := range deps {
		d.waiting = "a daemon it requires is stopping"
		s.log.Named(d.cfg.Name).Info("stopping before a daemon it requires")
	}
	s.drain(append(ds, deps...), func(d *daemon) {
		if own[d] {
			if done != nil {
				done(d)
			}
			return
		}
		d.pool, d.listeners, d.held = nil, nil, true
		s.reg.remove(d.cfg.Name)
		s.kickGate()
	})
}

// stopAll drains every daemon and waits for every drain, those already
// under way included.
func (s *Supervisor) stopAll() {
	var ds []*daemon
	for _, d := range s.daemons {
		d.cancelRetry()
		d.cancelPortWait()
		if d.pool != nil && !d.draining {
			ds = append(ds, d)
		} else if d.pool == nil && !d.draining {
			s.closeAll(d.listeners) // scaled to 0
		}
	}
	s.drain(ds, nil)
	s.drains.Wait()
	s.daemons = map[string]*daemon{}
}

// stopPool drains one daemon's pool and closes its listeners.
// A daemon scaled to 0 (keepListeners) keeps its listeners.
func (s *Supervisor) stopPool(d *daemon) {
	if d.pool == nil {
		if !d.keepListeners {
			s.closeAll(d.listeners) // scaled to 0 earlier
		}
		return
	}
	// Bounded: the pool SIGKILLs after graceful_timeout; allow for reaping.
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.GracefulTimeout+10*time.Second)
	defer cancel()
	if err := d.pool.Stop(ctx); err != nil {
		s.log.Error("stop daemon", "daemon", d.cfg.Name, "error", err)
	}
	if !d.keepListeners {
		s.closeAll(d.listeners)
	}
	s.log.Named(d.cfg.Name).Info("daemon stopped")
}
