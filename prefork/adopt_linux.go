package prefork

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// An upgrade re-executes the master in place (same pid: the workers stay
// its children). Before the exec the pump lets go of every running worker's
// pipes without closing them (Export) and the master passes them on; after
// it, the new master's pump adopts each worker (Adopt) with a pidfd opened
// anew: the worker is still our unreaped child, so its pid cannot have been
// reused.

var _ Handover = (*Pump)(nil)

// Export takes every running worker's pipes out of the pump (see Handover).
func (b *Pump) Export() (map[int]WorkerPipes, func()) {
	ack := make(chan struct{})
	var ws []*watch
	if !b.p.post(pumpOp{export: &ws, ack: ack}) {
		return nil, func() {}
	}
	<-ack
	out := make(map[int]WorkerPipes, len(ws))
	for _, w := range ws {
		wp := WorkerPipes{Stdout: w.fds[fdStdout], Stderr: w.fds[fdStderr]}
		for i, o := range w.out {
			if pw, ok := o.(pendingWriter); ok {
				wp.Partial[i] = slices.Clone(pw.Pending())
			}
		}
		out[w.pid] = wp
	}
	return out, func() {
		for _, w := range ws {
			if err := b.p.add(w); err != nil {
				w.close()
			}
		}
	}
}

// export takes the running watches out of the epoll instance and out of
// the pump, their fds open: for Export, on the loop.
func (p *pump) export() []*watch {
	var out []*watch
	for id, w := range p.watches {
		if w.state != watchRunning {
			continue
		}
		for i, fd := range w.fds {
			if fd >= 0 && (i == fdPid || !w.held[i]) {
				_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			}
		}
		w.held = [2]bool{}
		delete(p.watches, id)
		out = append(out, w)
	}
	return out
}

// Adopt watches a worker of an earlier master in this process (see Handover).
func (b *Pump) Adopt(c Command, pid int, pipes WorkerPipes) (*Process, error) {
	b.trackInherited(pid) // the orphan reaper leaves it to its pool
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		pidfd = -1 // waited for by a thread instead
	}
	proc := b.r.process(pid)
	w := &watch{pid: pid, fds: [3]int{pipes.Stdout, pipes.Stderr, pidfd}, owner: c.Owner}
	for _, fd := range w.fds[:2] {
		if fd >= 0 {
			unix.CloseOnExec(fd)
		}
	}
	w.exited = c.exitedFunc(proc)
	if c.Output != nil {
		for i, name := range streamNames {
			if w.fds[i] >= 0 {
				w.out[i] = c.Output(pid, name)
				if w.out[i] != nil && len(pipes.Partial[i]) > 0 {
					_, _ = w.out[i].Write(pipes.Partial[i]) // the start of the line the pipe goes on with
				}
			}
		}
	}
	if err := b.p.add(w); err != nil {
		w.close()
		return nil, fmt.Errorf("adopt worker %d: %w", pid, err)
	}
	return proc, nil
}
