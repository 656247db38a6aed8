package prefork

import (
	"slices"
	"time"
)

func (p *Pool) run() {
	defer close(p.done)
	defer func() {
		p.pump.drop(p) // output of workers' children that still hold a pipe
		releasePump()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stop := p.stop
	for {
		now := time.Now()
		p.step(now)
		if p.stopping && len(p.workers) == 0 {
			p.setState(PoolStopped)
			if p.nsock != nil {
				close(p.sockDone)
				p.nsock.close()
			}
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var tc <-chan time.Time
		if !p.wake.IsZero() {
			timer.Reset(max(p.wake.Sub(now), 0))
			tc = timer.C
		}
		select {
		case batch := <-p.notes:
			now := time.Now()
			for _, nt := range batch {
				p.handleNote(nt, now)
			}
		case <-p.exitc:
			for _, ex := range p.takeExited() {
				p.handleExit(ex, time.Now())
			}
		case f := <-p.reqs:
			f()
		case <-stop:
			stop = nil
			p.stopping = true
			p.setState(PoolStopping)
			for _, w := range p.workers {
				p.terminate(w, "stopped", time.Now())
			}
		case <-tc:
		}
	}
}

// step applies timeouts and the spare-server policy, and sets p.wake.
func (p *Pool) step(now time.Time) {
	p.wake = time.Time{}
	p.timeouts(now)
	if !p.stopping && !p.fatal {
		p.applyPolicy(now)
		p.timeouts(now) // arm the deadlines of workers the policy just started
	}
	p.setState(p.computeState(now))
}

// timeouts kills workers past a deadline and arms p.wake for the next one.
func (p *Pool) timeouts(now time.Time) {
	for _, w := range p.workers {
		switch {
		case w.cause != "":
			if !w.killed && !now.Before(w.killAt) {
				p.cfg.Logger.Warn("worker did not stop in time; killing it", "pid", w.pid, "graceful_timeout", p.cfg.GracefulTimeout)
				p.kill(w)
			}
			if !w.killed {
				p.wakeAt(w.killAt)
			}
		case !w.ready && p.cfg.Notify:
			deadline := w.started.Add(p.cfg.ReadyTimeout)
			if !now.Before(deadline) {
				p.cfg.Logger.Warn("worker not ready in time; killing it", "pid", w.pid, "ready_timeout", p.cfg.ReadyTimeout)
				w.cause = "ready-timeout"
				p.kill(w)
				p.failedStart(now, w.attempt)
			} else {
				p.wakeAt(deadline)
			}
		case p.cfg.Watchdog > 0:
			deadline := w.lastPing.Add(p.cfg.Watchdog)
			if !now.Before(deadline) {
				p.cfg.Logger.Warn("worker missed its watchdog; killing it", "pid", w.pid, "watchdog", p.cfg.Watchdog)
				w.cause = "watchdog"
				p.kill(w)
			} else {
				p.wakeAt(deadline)
			}
		}
		// A worker of the current start attempt that has lived start_period
		// and is ready ends a run of failed starts; older workers prove nothing.
		if p.failedStarts > 0 && w.ready && w.cause == "" && !w.replaced && w.attempt == p.attempt {
			ok := w.started.Add(p.cfg.StartPeriod)
			if !now.Before(ok) {
				p.failedStarts = 0
				p.nextSpawn = time.Time{}
			} else {
				p.wakeAt(ok)
			}
		}
	}
}

func (p *Pool) applyPolicy(now time.Time) {
	// Replaced workers go once no replacement is still starting and enough
	// replacements are ready: a new configuration that fails to start leaves
	// the old workers serving.
	starting, ready := false, 0
	for _, w := range p.workers {
		if w.cause == "" && !w.replaced {
			if w.ready {
				ready++
			} else {
				starting = true
			}
		}
	}
	if !starting && ready >= p.cfg.Policy.MinServers {
		for _, w := range p.workers {
			if w.replaced && w.cause == "" {
				p.terminate(w, "replaced", now)
			}
		}
	}
	if now.Before(p.nextSpawn) {
		p.wakeAt(p.nextSpawn)
		return
	}
	var (
		sb   []Slot
		live []*worker
	)
	for _, w := range p.workers {
		if w.cause != "" || w.replaced {
			continue
		}
		sb = append(sb, Slot{State: w.state, Started: w.started, IdleSince: w.idleSince})
		live = append(live, w)
	}
	plan := Decide(sb, p.cfg.Policy, p.lastBusy, now)
	p.wakeAt(plan.WakeAt)
	for _, i := range plan.Retire {
		p.terminate(live[i], "retired", now)
	}
	n := plan.Spawn
	// Workers being replaced or draining still hold memory: however fast
	// reloads come, the pool never has more than twice max_servers
	// processes; new ones wait for old ones to leave.
	if hard := 2*p.cfg.Policy.MaxServers - len(p.workers); n > hard {
		n = max(hard, 0)
		p.makeRoom(plan.Spawn-n, now)
	}
	if p.failedStarts > 0 { // after a failed start, probe with one worker at a time
		if starting {
			n = 0
		} else {
			n = min(n, 1)
		}
	}
	for range n {
		if err := p.spawn(now); err != nil {
			p.cfg.Logger.Error("cannot start worker", "error", err)
			p.failedStart(now, p.attempt)
			return
		}
	}
}

// makeRoom stops up to k workers that are being replaced, oldest first,
// while at least min_servers others still serve: under the process cap,
// replacements can only start once old workers leave.
func (p *Pool) makeRoom(k int, now time.Time) {
	serving := 0
	var old []*worker
	for _, w := range p.workers {
		if w.ready && w.cause == "" {
			serving++
			if w.replaced {
				old = append(old, w)
			}
		}
	}
	slices.SortFunc(old, func(a, b *worker) int { return a.started.Compare(b.started) })
	for _, w := range old {
		if k == 0 || serving <= p.cfg.Policy.MinServers {
			return
		}
		p.terminate(w, "replaced", now)
		serving--
		k--
	}
}

func (p *Pool) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	if p.wake.IsZero() || t.Before(p.wake) {
		p.wake = t
	}
}

func (p *Pool) computeState(now time.Time) PoolState {
	switch {
	case p.stopping:
		return PoolStopping
	case p.fatal:
		return PoolFatal
	}
	for _, w := range p.workers {
		if w.ready && w.cause == "" {
			return PoolRunning
		}
	}
	if now.Before(p.nextSpawn) {
		return PoolBackoff
	}
	return PoolStarting
}

func (p *Pool) setState(s PoolState) {
	if s == p.state {
		return
	}
	p.state = s
	switch s {
	case PoolRunning, PoolFatal, PoolStopped:
		p.settle.Do(func() { close(p.settled) })
	}
	p.since = time.Now()
	p.observe(Event{Kind: EventState, State: s})
}

func (p *Pool) observe(e Event) {
	if p.cfg.Observer != nil {
		e.Pool = p.cfg.Name
		p.cfg.Observer(e)
	}
}
