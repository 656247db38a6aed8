package prefork

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// worker is one worker process as the pool sees it.
type worker struct {
	pid        int
	slot       int
	gen        int // restart generation; older ones are rolled out
	state      WorkerState
	started    time.Time
	idleSince  time.Time
	lastPing   time.Time
	ready      bool
	attempt    int // the start attempt (round) it belongs to
	requests   int
	ownCount   bool // sent REQUESTS=: its requests come from that word, no longer from BUSY=1
	maxReq     int
	replaced   bool      // max_requests reached or rolled: stopped once replacements are ready
	cause      ExitCause // why it was told to stop; CauseNone: it was not
	killAt     time.Time
	killed     bool
	status     string
	proc       *Process
	stopSignal bool
	cg         *workerCgroup // its control group; nil: none
	rssStrikes int           // max_rss checks in a row it was above the limit
}

// exitEvent says a worker has exited, and that what it wrote before is read.
// It is not reaped yet: its zombie keeps the pid from being reused until the
// loop reaps it (proc.Wait, which then returns at once) and forgets it, so no
// signal can reach a stranger.
type exitEvent struct {
	pid  int
	proc *Process
}

func (p *Pool) freeSlot() int {
	used := make(map[int]bool, len(p.workers))
	for _, w := range p.workers {
		used[w.slot] = true
	}
	for i := 0; ; i++ {
		if !used[i] {
			return i
		}
	}
}

func (p *Pool) spawn(ctx context.Context, now time.Time) error {
	slot := p.freeSlot()
	maxReq := p.cfg.MaxRequests
	if maxReq > 0 && p.cfg.MaxRequestsJitter > 0 {
		maxReq += rand.IntN(p.cfg.MaxRequestsJitter + 1)
	}
	p.spawnedCg = nil
	proc, err := p.sys.start(ctx, p, slot, maxReq)
	if err != nil {
		return err
	}
	w := &worker{
		cg:       p.spawnedCg,
		pid:      proc.Pid,
		proc:     proc,
		slot:     slot,
		gen:      p.gen,
		started:  now,
		lastPing: now,
		attempt:  p.attempt,
		state:    StateStarting,
		maxReq:   maxReq,
	}
	if !p.cfg.Notify {
		w.ready, w.state, w.idleSince = true, StateIdle, now
	}
	p.workers[w.pid] = w
	p.spawns++
	p.cfg.Logger.Debug("worker started", "pid", w.pid, "slot", slot)
	p.observe(Event{Kind: EventSpawn, PID: w.pid, Slot: slot})
	if w.ready {
		p.observe(Event{Kind: EventReady, PID: w.pid, Slot: slot})
	}
	return nil
}

func (p *Pool) handleNote(nt note, now time.Time) {
	if nt.err != nil {
		p.malformed++
		// The first drop is logged, then at most one line a minute: a
		// worker flooding the socket with garbage must not flood the log.
		if p.malformed == 1 || now.Sub(p.malformedLogged) >= time.Minute {
			p.cfg.Logger.Warn("dropped notify datagram", "pid", nt.pid, "error", nt.err, "dropped_total", p.malformed)
			p.malformedLogged = now
		}
		return
	}
	w := p.workers[nt.pid]
	if w == nil {
		w = p.noteSender(nt.pid) // a process in a worker's tree, with notify_access = all
	}
	if w == nil {
		// A process that is not ours, or (notify_access = main) a worker's child: it cannot speak for a worker.
		p.malformed++
		return
	}
	m := nt.msg
	if m.HasStatus {
		w.status = m.Status
	}
	if m.HasRequests {
		// The worker counts for itself from now on: BUSY=1 no longer adds
		// one, in this datagram or later ones, so nothing counts twice.
		w.ownCount = true
		if m.Requests > w.requests {
			// Requests begun are activity, busy or not: a worker serving
			// many connections at once reports BUSY=1 only when full, so
			// without this a pool serving steady traffic below that looks
			// quiet, and is trimmed (or, on demand, retired) under it.
			p.lastActive = now
		}
		p.countRequests(w, m.Requests)
	}
	if m.Watchdog {
		w.lastPing = now
	}
	if m.WatchdogTrigger && w.cause == CauseNone {
		p.cfg.Logger.Warn("worker asked for the watchdog action; killing it", "pid", w.pid)
		w.cause = CauseWatchdog
		p.kill(w)
		return
	}
	if m.Ready && !w.ready {
		w.ready, w.lastPing = true, now
		if w.state == StateStarting {
			w.state, w.idleSince = StateIdle, now
		}
		p.observe(Event{Kind: EventReady, PID: w.pid, Slot: w.slot})
	}
	switch m.Busy {
	case 1:
		if !w.ready { // a worker that reports work is evidently ready
			w.ready = true
			p.observe(Event{Kind: EventReady, PID: w.pid, Slot: w.slot})
		}
		if w.state != StateStopping {
			w.state = StateBusy
		}
		if !w.ownCount {
			p.countRequests(w, w.requests+1)
		}
		p.lastActive = now
	case 0:
		if w.state == StateBusy {
			w.state, w.idleSince = StateIdle, now
		}
		p.lastActive = now
	}
	if m.Stopping && w.cause == CauseNone {
		// The worker leaves on its own: replace it now, and do not count its exit as a crash.
		w.cause = CauseExited
		w.state = StateStopping
		w.killAt = now.Add(p.cfg.GracefulTimeout)
	}
}

// countRequests raises w's request count to n, never lowering it, and
// marks w for replacement once it reaches its max_requests.
func (p *Pool) countRequests(w *worker, n int) {
	if n <= w.requests {
		return
	}
	p.requests += min(n-w.requests, math.MaxInt-p.requests) // a wild REQUESTS= cannot wrap the total
	w.requests = n
	if w.maxReq > 0 && w.requests >= w.maxReq && !w.replaced && w.cause == CauseNone {
		p.cfg.Logger.Debug("worker reached max_requests; replacing it", "pid", w.pid, "requests", w.requests)
		w.replaced = true
	}
}

// terminate sends SIGTERM and arms the SIGKILL deadline.
func (p *Pool) terminate(w *worker, cause ExitCause, now time.Time) {
	if w.cause != CauseNone && w.stopSignal {
		return
	}
	if w.cause == CauseNone {
		w.cause = cause
	}
	w.stopSignal = true
	w.state = StateStopping
	w.killAt = now.Add(p.cfg.GracefulTimeout)
	if err := p.sys.signal(w.proc, sigTerm); err != nil {
		p.cfg.Logger.Debug("signal worker", "pid", w.pid, "error", err)
	}
}

// kill sends SIGKILL to the worker's process group.
func (p *Pool) kill(w *worker) {
	if w.cause == CauseNone {
		w.cause = CauseStopped
	}
	w.killed = true
	w.state = StateStopping
	if w.cg != nil {
		w.cg.kill()
	}
	if err := p.sys.killGroup(w.pid); err != nil {
		p.cfg.Logger.Debug("kill worker", "pid", w.pid, "error", err)
	}
}

// workerExited queues ex for the run goroutine. The process backend calls
// it (Command.Exited): it does not block.
func (p *Pool) workerExited(ex exitEvent) {
	p.exitMu.Lock()
	p.exited = append(p.exited, ex)
	p.exitMu.Unlock()
	select {
	case p.exitc <- struct{}{}:
	default: // a token is there already
	}
}

// takeExited returns the exits queued since the last call.
func (p *Pool) takeExited() []exitEvent {
	p.exitMu.Lock()
	defer p.exitMu.Unlock()
	ex := p.exited
	p.exited = nil
	return ex
}

func (p *Pool) handleExit(ex exitEvent, now time.Time) {
	w := p.workers[ex.pid]
	killed := false
	if w != nil && w.cg != nil {
		killed = w.cg.kill()
	}
	if p.sys.leftovers != nil && !killed {
		// Whatever the worker started dies with it. Before the reaping:
		// until then its pid, and so its process group's id, is its own.
		// (A cgroup.kill of its group killed all of it already, without the
		// orphan reaper's pass over the master's children.)
		_ = p.sys.leftovers(ex.pid)
	}
	ws, werr := ex.proc.Wait() // reap: the process has exited, so this does not block
	if p.nsock != nil {
		p.nsock.release(ex.pid) // its notes are read (exitsArrived)
	}
	p.board.forget(ex.pid)
	if p.senders != nil {
		p.senders.forget(ex.pid)
	}
	if w == nil {
		return
	}
	code, sig := exitInfo(ws, werr)
	// Only a worker killed by SIGKILL can be the OOM killer's victim: its
	// group's count is read then alone, before the group is removed.
	oom := sig == "killed" && w.cg != nil && w.cg.oomKills() > 0
	if w.cg != nil {
		w.cg.remove()
	}
	delete(p.workers, ex.pid)
	if oom {
		p.oomKills++
		p.cfg.Logger.Error("worker killed by the kernel's OOM killer: memory_max "+formatBytes(p.cfg.Cgroup.Limits().MemoryMax),
			"pid", w.pid, "slot", w.slot)
		if w.cause == CauseNone {
			w.cause = CauseOOM
		}
	}
	lived := now.Sub(w.started)
	ev := Event{Kind: EventExit, PID: w.pid, Slot: w.slot, Requests: w.requests, ExitCode: code, Signal: sig}
	desc := describeExit(code, sig)
	switch {
	case w.cause == CauseReadyTimeout, w.cause == CauseNone && (lived < p.cfg.StartPeriod || !w.ready):
		ev.Cause = CauseFailedStart
		if w.cause == CauseReadyTimeout {
			ev.Cause = CauseReadyTimeout
		}
		p.observe(ev)
		if !p.stopping {
			p.restarts++
			p.cfg.Logger.Warn("worker failed to start", "pid", w.pid, "exit", desc, "after", lived.Round(time.Millisecond))
			if ev.Cause == CauseFailedStart { // a ready timeout was counted when it fired
				p.failedStart(now, w.attempt)
			}
		}
		return
	case w.cause != CauseNone:
		ev.Cause = w.cause
		if (w.cause == CauseWatchdog || w.cause == CauseOOM) && !p.stopping {
			p.restarts++
		}
		lvl := hclog.Debug
		if w.cause == CauseWatchdog || w.cause == CauseOOM || w.killed {
			lvl = hclog.Warn
		}
		p.cfg.Logger.Log(lvl, "worker exited", "pid", w.pid, "cause", w.cause.String(), "exit", desc, "requests", w.requests)
	default:
		ev.Cause = CauseCrashed
		if code == 0 && sig == "" {
			ev.Cause = CauseExited
		}
		p.restarts++
		p.cfg.Logger.Warn("worker exited unexpectedly; replacing it", "pid", w.pid, "exit", desc, "uptime", lived.Round(time.Millisecond))
	}
	p.observe(ev)
}

// failedStart counts a failed start of the given attempt (round): the
// workers started together fail together and count once.
func (p *Pool) failedStart(now time.Time, attempt int) {
	if attempt != p.attempt || p.fatal {
		return
	}
	p.attempt++
	p.failedStarts++
	if p.failedStarts >= p.cfg.StartRetries {
		p.fatal = true
		p.cfg.Logger.Error("daemon failed to start; giving up until `nsfd restart` or a config change",
			"failed_starts", p.failedStarts, "start_retries", p.cfg.StartRetries)
		return
	}
	backoff := p.cfg.BackoffInitial << (p.failedStarts - 1)
	if backoff > p.cfg.BackoffMax || backoff <= 0 {
		backoff = p.cfg.BackoffMax
	}
	p.nextSpawn = now.Add(backoff)
	p.wakeAt(p.nextSpawn) // a start that failed in the spawn has no worker's exit to wake the pool for the retry
	p.cfg.Logger.Warn("backing off before the next start",
		"retry", strconv.Itoa(p.failedStarts+1)+"/"+strconv.Itoa(p.cfg.StartRetries), "backoff", backoff)
}

// formatBytes renders a size as config files write it: 64MiB, 1GiB, 512B.
func formatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
