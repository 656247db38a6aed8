package prefork

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// On demand (Policy.MinServers 0). The pool starts dormant: no worker, and
// a goroutine waits for any of its listeners to become readable — a
// connection in the backlog, a datagram in the queue — which the kernel
// keeps there, never refused, until a worker accepts it. Then the pool
// wakes: it starts a worker at once, and the spare-server policy applies
// from there. Once no worker has been active for IdleTimeout (and none was
// started meanwhile), every worker is retired and the pool is dormant
// again. Activity is what the workers report: BUSY=1, or a REQUESTS=n
// count that moved (a worker serving many connections at once is busy only
// when full); a worker that reports nothing looks idle.

// onDemand applies the on-demand rules; true means the policy must start
// no worker now.
func (p *Pool) onDemand(ctx context.Context, now time.Time) bool {
	if p.cfg.Policy.MinServers > 0 {
		return false
	}
	var live []*worker
	active := p.lastActive
	if p.activeAt.After(active) {
		active = p.activeAt
	}
	quiet := true
	for _, w := range p.workers {
		if w.cause != CauseNone || w.replaced {
			continue
		}
		live = append(live, w)
		if w.state == StateBusy || !w.ready {
			quiet = false
		}
		if w.started.After(active) {
			active = w.started
		}
	}
	if p.dormant {
		if len(live) == 0 {
			p.watchListeners(ctx)
		}
		return true
	}
	if p.cfg.IdleTimeout <= 0 || len(live) == 0 || !quiet {
		return false
	}
	if until := active.Add(p.cfg.IdleTimeout); now.Before(until) {
		p.wakeAt(until)
		return false
	}
	p.cfg.Logger.Info("no request for idle_timeout; retiring every worker until the next connection",
		"idle_timeout", p.cfg.IdleTimeout, "workers", len(live))
	for _, w := range live {
		p.terminate(w, CauseRetired, now)
	}
	p.dormant = true
	return true
}

// woken is the listener watch's signal: a client waits.
func (p *Pool) woken(now time.Time) {
	p.listenWatching = false
	if !p.dormant || p.stopping {
		return
	}
	p.dormant = false
	p.activeAt = now
	p.cfg.Logger.Debug("a client is waiting; starting a worker on demand")
}

// watchListeners starts the goroutine that waits for a listener to become
// readable, once (listenWait: on Linux an epoll instance of the listeners
// that the runtime's poller watches, so a dormant daemon holds no thread).
func (p *Pool) watchListeners(ctx context.Context) {
	if p.listenWatching || p.stopping {
		return
	}
	var fds []int
	for _, l := range p.cfg.Listeners {
		rc, err := l.File().SyscallConn()
		if err != nil {
			continue
		}
		rc.Control(func(fd uintptr) {
			if nfd, err := unix.Dup(int(fd)); err == nil {
				unix.CloseOnExec(nfd)
				fds = append(fds, nfd)
			}
		})
	}
	if len(fds) == 0 {
		p.dormant = false // nothing to wait on: start as if woken
		return
	}
	p.listenWatching = true
	go func() {
		defer func() {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}()
		ready, err := listenWait(ctx, fds, p.stop)
		if err != nil {
			p.cfg.Logger.Error("on demand: cannot watch the listeners; starting a worker", "error", err)
		}
		if ready || err != nil {
			select {
			case p.listenWake <- struct{}{}:
			default:
			}
		}
	}()
}
