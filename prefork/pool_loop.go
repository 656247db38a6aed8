package prefork

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Stalls. The loop judges workers by the clock (watchdog, ready_timeout),
// and a master that does not run cannot read what they send: stopped by
// SIGSTOP, paused with its VM, starved in a swap storm, it finds on waking
// that every deadline has passed, while the workers' pings wait unread in
// the socket or were dropped when its small queue filled. So:
//
//   - before it applies a deadline, the loop reads every datagram the
//     kernel holds (noteSource.take with flush);
//   - while a deadline is armed, the loop runs at least every stallCheck,
//     and if it runs more than stallThreshold later than it meant to, the
//     master itself was stalled: every worker gets a fresh watchdog and
//     ready_timeout period from then (graceFrom), and the log says so.
//
// A master that stalls again and again keeps judging nobody: it cannot
// tell a hung worker from its own absence. Graceful-stop deadlines (SIGKILL
// after graceful_timeout) are not extended: they only ever end a worker
// that was already told to go.
const (
	stallCheck     = time.Second
	stallThreshold = time.Second
)

// run is the pool's goroutine. Its context, passed down to the spawns,
// ends when it returns.
func (p *Pool) run() {
	defer close(p.done)
	defer func() { p.cfg.Cgroup.Close() }() // the pool's latest configuration's
	defer p.cfg.Procs.Drop(p)               // output of workers' children that still hold a pipe
	defer p.stopForkServer()                // preload: after the workers (its own exit is watched apart)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stop := p.stop
	for {
		now := p.sys.now()
		p.step(ctx, now)
		if p.stopping && len(p.workers) == 0 {
			p.setState(PoolStopped)
			if p.nsock != nil {
				close(p.sockDone)
				p.nsock.close()
			}
			p.board.close()
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var tc <-chan time.Time
		if !p.expect.IsZero() {
			timer.Reset(max(p.expect.Sub(now), 0))
			tc = timer.C
		}
		select {
		case <-p.notes.ready():
			p.handleNotes(p.notes.take(false), p.sys.now())
		case <-p.exitc:
			p.exitsArrived()
		case <-p.listenWake:
			p.woken(p.sys.now())
		case l := <-p.forkLoaded:
			p.forkServerLoaded(l, p.sys.now())
		case f := <-p.reqs:
			f()
		case <-stop:
			stop = nil
			p.stopping = true
			p.setState(PoolStopping)
			for _, w := range p.workers {
				p.terminate(w, CauseStopped, p.sys.now())
			}
		case <-tc:
		}
	}
}

// step reads what is queued if a deadline may be due, notices a stall of
// the master, applies timeouts and the spare-server policy, and sets
// p.wake and p.expect.
func (p *Pool) step(ctx context.Context, now time.Time) {
	if !p.expect.IsZero() && !now.Before(p.expect) {
		p.handleNotes(p.notes.take(true), now) // what the workers sent, before judging them
		if late := now.Sub(p.expect); late > stallThreshold {
			p.graceFrom = now
			p.cfg.Logger.Warn("the master was stalled; giving every worker a fresh watchdog and ready_timeout period",
				"late", late.Round(time.Millisecond))
		}
	}
	p.wake = time.Time{}
	p.timeouts(now)
	if !p.stopping && !p.fatal {
		p.checkRSS(now)
		p.applyPolicy(ctx, now)
		p.timeouts(now) // arm the deadlines of workers the policy just started
	}
	p.setState(p.computeState(now))
	p.expect = p.wake
	if check := now.Add(stallCheck); !p.wake.IsZero() && check.Before(p.wake) {
		p.expect = check
	}
}

// exitsArrived handles the exits the pump queued. An exited worker sent
// its last datagrams (STOPPING=1, say) before it exited: they are read
// first, while its pid is still its own — its zombie is reaped only in
// handleExit — so they count for it, and no later process that gets the
// pid inherits them.
func (p *Pool) exitsArrived() {
	p.handleNotes(p.notes.take(true), p.sys.now())
	for _, ex := range p.takeExited() {
		p.handleExit(ex, p.sys.now())
	}
}

// handleNotes applies notes in order, and closes a BARRIER=1's descriptor
// once everything before it is handled.
func (p *Pool) handleNotes(notes []note, now time.Time) {
	for _, nt := range notes {
		p.handleNote(nt, now)
		nt.release()
	}
}

// sinceStall returns the later of t and the end of the master's last stall:
// where a deadline of a worker's runs from.
func (p *Pool) sinceStall(t time.Time) time.Time {
	if t.Before(p.graceFrom) {
		return p.graceFrom
	}
	return t
}

// timeouts kills workers past a deadline and arms p.wake for the next one.
func (p *Pool) timeouts(now time.Time) {
	for _, w := range p.workers {
		switch {
		case w.cause != CauseNone:
			if !w.killed && !now.Before(w.killAt) {
				p.cfg.Logger.Warn("worker did not stop in time; killing it", "pid", w.pid, "graceful_timeout", p.cfg.GracefulTimeout)
				p.kill(w)
			}
			if !w.killed {
				p.wakeAt(w.killAt)
			}
		case !w.ready && p.cfg.Notify:
			deadline := p.sinceStall(w.started).Add(p.cfg.ReadyTimeout)
			if !now.Before(deadline) {
				p.cfg.Logger.Warn("worker not ready in time; killing it", "pid", w.pid, "ready_timeout", p.cfg.ReadyTimeout)
				w.cause = CauseReadyTimeout
				p.kill(w)
				p.failedStart(now, w.attempt)
			} else {
				p.wakeAt(deadline)
			}
		case p.cfg.Watchdog > 0:
			deadline := p.sinceStall(w.lastPing).Add(p.cfg.Watchdog)
			if !now.Before(deadline) {
				p.cfg.Logger.Warn("worker missed its watchdog; killing it", "pid", w.pid, "watchdog", p.cfg.Watchdog)
				w.cause = CauseWatchdog
				p.kill(w)
			} else {
				p.wakeAt(deadline)
			}
		}
		// A worker of the current start attempt that has lived start_period
		// and is ready ends a run of failed starts; older workers prove nothing.
		if p.failedStarts > 0 && w.ready && w.cause == CauseNone && !w.replaced && w.attempt == p.attempt {
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

func (p *Pool) applyPolicy(ctx context.Context, now time.Time) {
	// Replaced workers go once no replacement is still starting and enough
	// replacements are ready: a new configuration that fails to start leaves
	// the old workers serving.
	starting, ready := false, 0
	probing := false // a worker of this start attempt has not yet proved itself
	for _, w := range p.workers {
		if w.cause == CauseNone && !w.replaced {
			if w.ready {
				ready++
			} else {
				starting = true
			}
			// type = simple is ready at exec: after failed starts, a probe
			// is in flight until it has lived start_period.
			if !w.ready || now.Before(w.started.Add(p.cfg.StartPeriod)) {
				probing = true
			}
		}
	}
	if !starting && ready >= p.cfg.Policy.MinServers {
		for _, w := range p.workers {
			if w.replaced && w.cause == CauseNone {
				p.terminate(w, CauseReplaced, now)
			}
		}
	}
	if p.onDemand(ctx, now) {
		return
	}
	if now.Before(p.nextSpawn) {
		p.wakeAt(p.nextSpawn)
		return
	}
	sb, live := p.scoreboard()
	plan := Decide(sb, p.cfg.Policy, p.lastActive, now)
	p.wakeAt(plan.WakeAt)
	for _, i := range plan.Retire {
		p.terminate(live[i], CauseRetired, now)
	}
	n := plan.Spawn
	// Workers being replaced or draining still hold memory: however fast
	// reloads come, the pool never has more than twice max_servers
	// processes; new ones wait for old ones to leave.
	if hard := 2*p.cfg.Policy.MaxServers - len(p.workers); n > hard {
		n = max(hard, 0)
		p.makeRoom(plan.Spawn-n, now)
	}
	if n == 0 && len(live) == 0 && p.cfg.Policy.MinServers == 0 {
		n = 1 // woken on demand: the connection waiting needs a worker
	}
	if p.failedStarts > 0 { // after a failed start, probe with one worker at a time
		if probing {
			n = 0
		} else {
			n = min(n, 1)
		}
	}
	for range n {
		if err := p.spawn(ctx, now); err != nil {
			if errors.Is(err, errLoading) {
				return // the loop hears when the fork-server is ready (forkServerLoaded)
			}
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
		if w.ready && w.cause == CauseNone {
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
		p.terminate(w, CauseReplaced, now)
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
		if w.ready && w.cause == CauseNone {
			return PoolRunning
		}
	}
	if p.dormant {
		return PoolIdle
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
	case PoolRunning, PoolFatal, PoolStopped, PoolIdle:
		p.settle.Do(func() { close(p.settled) })
	}
	p.since = p.sys.now()
	p.observe(Event{Kind: EventState, State: s})
}

func (p *Pool) observe(e Event) {
	if p.cfg.Observer != nil {
		e.Pool = p.cfg.Name
		p.cfg.Observer(e)
	}
}

// scoreboard returns the workers the spare-server policy counts (not
// leaving, not replaced) and their slots.
func (p *Pool) scoreboard() (sb []Slot, live []*worker) {
	for _, w := range p.workers {
		if w.cause != CauseNone || w.replaced {
			continue
		}
		sb = append(sb, Slot{State: w.state, Started: w.started, IdleSince: w.idleSince})
		live = append(live, w)
	}
	return sb, live
}
