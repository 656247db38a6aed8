package prefork

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Freeze stops the pool's goroutine where it is, once it has handled what
// its workers sent and the exits already reported, and returns its state.
// The pool does nothing more (no spawn, no signal, no datagram read: they
// wait in the kernel) until release is called, which lets it go on as
// before: the upgrade failed. A pool that is not running returns
// ErrStopped.
func (p *Pool) Freeze(ctx context.Context) (h PoolHandover, release func(), err error) {
	snap := make(chan PoolHandover, 1)
	released := make(chan struct{})
	errc := make(chan error, 1)
	ns, ok := p.nsock.(*notifySocket)
	if p.nsock != nil && !ok {
		return PoolHandover{}, nil, fmt.Errorf("pool %s: per-worker notify sockets cannot be handed over", p.cfg.Name)
	}
	go func() {
		errc <- p.do(ctx, func() {
			if ns != nil {
				// The reader stops; what comes next stays in the kernel's queue.
				_ = ns.conn.SetReadDeadline(time.Unix(1, 0))
			}
			p.exitsArrived()
			snap <- p.handover(ns)
			<-released
			if ns != nil {
				_ = ns.conn.SetReadDeadline(time.Time{})
				go ns.read(p.sockDone)
			}
		})
	}()
	select {
	case h := <-snap:
		return h, sync.OnceFunc(func() { close(released) }), nil
	case err := <-errc:
		return PoolHandover{}, nil, err
	}
}

// handover is the pool's state for Freeze, on its goroutine; ns is its
// notify socket, if any.
func (p *Pool) handover(ns *notifySocket) PoolHandover {
	h := PoolHandover{NotifyFD: -1, Spawns: p.spawns, Restarts: p.restarts, Requests: p.requests,
		Malformed: p.malformed, FailedStarts: p.failedStarts, Fatal: p.fatal, Since: p.since}
	if ns != nil {
		_ = ns.rc.Control(func(fd uintptr) { h.NotifyFD = int(fd) })
	}
	for _, w := range p.workers {
		h.Workers = append(h.Workers, WorkerHandover{
			PID: w.pid, Slot: w.slot, State: w.state, Started: w.started, IdleSince: w.idleSince, Ready: w.ready,
			Requests: w.requests, OwnCount: w.ownCount, MaxRequests: w.maxReq, Replaced: w.replaced || w.gen != p.gen,
			Cause: w.cause, StopSignal: w.stopSignal, Killed: w.killed, Status: w.status,
			Pipes: WorkerPipes{Stdout: -1, Stderr: -1},
		})
	}
	return h
}

// AdoptPool returns the pool of cfg running the workers of h, handed over
// by the master this process was before an upgrade; cfg.Procs must be a
// Handover. The workers are not touched: they run on, and their output
// flows on into cfg.Output. A worker that cannot be adopted is killed
// (nothing could reap it otherwise) and the error says so.
func AdoptPool(cfg Config, h PoolHandover) (*Pool, error) {
	p, err := NewPool(cfg)
	if err != nil {
		return nil, err
	}
	hv, ok := cfg.Procs.(Handover)
	if !ok {
		return nil, fmt.Errorf("pool %s: process backend %T cannot adopt workers", cfg.Name, cfg.Procs)
	}
	if h.NotifyFD >= 0 {
		ns, err := adoptNotify(cfg.NotifyPath, h.NotifyFD)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", cfg.Name, err)
		}
		p.nsock, p.notes = ns, ns
		p.openBoard(true)
	}
	now := p.sys.now()
	p.spawns, p.restarts, p.requests, p.malformed = h.Spawns, h.Restarts, h.Requests, h.Malformed
	p.failedStarts, p.fatal = h.FailedStarts, h.Fatal
	p.graceFrom = now // no deadline runs from before the exec
	var errs []error
	for _, wh := range h.Workers {
		proc, err := hv.Adopt(Command{
			Output: cfg.Output,
			Exited: func(proc *Process) { p.workerExited(exitEvent{pid: proc.Pid, proc: proc}) },
			Owner:  p,
		}, wh.PID, wh.Pipes)
		if err != nil {
			_ = killGroup(wh.PID)
			var st unix.Siginfo
			_ = unix.Waitid(unix.P_PID, wh.PID, &st, unix.WEXITED, nil)
			errs = append(errs, err)
			continue
		}
		w := &worker{pid: wh.PID, proc: proc, slot: wh.Slot, gen: p.gen, state: wh.State, started: wh.Started,
			idleSince: wh.IdleSince, lastPing: now, ready: wh.Ready, attempt: p.attempt, requests: wh.Requests,
			ownCount: wh.OwnCount, maxReq: wh.MaxRequests, replaced: wh.Replaced, cause: wh.Cause,
			stopSignal: wh.StopSignal, killed: wh.Killed, status: wh.Status}
		if w.cause != CauseNone {
			w.killAt = now.Add(p.cfg.GracefulTimeout)
		}
		p.workers[w.pid] = w
	}
	p.startOnce.Do(func() {
		if p.nsock != nil {
			go p.nsock.read(p.sockDone)
		}
		p.since = h.Since
		if p.since.IsZero() {
			p.since = now
		}
		go p.run()
	})
	return p, errors.Join(errs...)
}

// adoptNotify makes a notify socket of fd, bound at path by the master
// before an upgrade.
func adoptNotify(path string, fd int) (*notifySocket, error) {
	f := os.NewFile(uintptr(fd), path)
	conn, err := net.FileConn(f) // a duplicate, close-on-exec
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("adopt notify socket %s: %w", path, err)
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("adopt notify socket %s: fd %d is a %T", path, fd, conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("adopt notify socket %s: %w", path, err)
	}
	ns := &notifySocket{path: path, conn: uc, rc: raw,
		batch: newMmsgBatch(mmsgBatchSize), notify: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil {
		ns.ino = st.Ino
	}
	return ns, nil
}
