package prefork

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// An upgrade re-executes the master in place (same pid: the workers stay
// its children). Before the exec the pump lets go of every running worker's
// pipes without closing them (Export) and the master passes them on; after
// it, the new master's pump adopts each worker (Adopt) with a pidfd opened
// anew: the worker is still our unreaped child, so its pid cannot have been
// reused.

// Handover is what a process backend must do for an upgrade; Pump does it.
type Handover interface {
	// Export takes every running worker's pipes out of the backend
	// without closing them or their writers and returns them by pid, with
	// a func that gives them back (the exec failed). Until that func is
	// called, nothing of those workers is read or reported.
	Export() (map[int]WorkerPipes, func())
	// Adopt watches a worker started by an earlier master in this
	// process, its pipes inherited: as Start, without starting it.
	Adopt(c Command, pid int, pipes WorkerPipes) (*os.Process, error)
}

var _ Handover = (*Pump)(nil)

// WorkerPipes are the read ends of a worker's stdout and stderr; -1: closed.
// Partial is what of an incomplete last line was read from each already
// (an Output writer with a Pending method tells).
type WorkerPipes struct {
	Stdout  int       `json:"stdout"`
	Stderr  int       `json:"stderr"`
	Partial [2][]byte `json:"partial,omitempty"`
}

// pendingWriter is an Output writer that holds an incomplete line
// (logging.LineWriter).
type pendingWriter interface{ Pending() []byte }

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
func (b *Pump) Adopt(c Command, pid int, pipes WorkerPipes) (*os.Process, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		pidfd = -1 // waited for by a thread instead
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		return nil, fmt.Errorf("adopt worker %d: %w", pid, err)
	}
	w := &watch{pid: pid, fds: [3]int{pipes.Stdout, pipes.Stderr, pidfd}, owner: c.Owner}
	for _, fd := range w.fds[:2] {
		if fd >= 0 {
			unix.CloseOnExec(fd)
		}
	}
	w.exited = func() { c.Exited(proc) }
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

// FD returns the listener's fd, for a hand-over across an exec; the
// listener keeps it.
func (l *Listener) FD() int { return int(l.file.Fd()) }

// AdoptListener makes a Listener of fd, a socket bound for spec that this
// process inherited (from the master it replaced, or from systemd).
func AdoptListener(ctx context.Context, spec ListenSpec, fd int) (*Listener, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	// Not net.FileListener: its duplicate would make the socket, which
	// the workers share, non-blocking under them.
	addr, err := sockAddr(fd, spec.Network)
	if err != nil {
		return nil, fmt.Errorf("adopt %s %s: %w", spec.Network, spec.Address, err)
	}
	file := os.NewFile(uintptr(fd), spec.Network+" "+spec.Address)
	l := &Listener{Spec: spec, Addr: addr, file: file, proto: protoOf(spec.Network)}
	if l.IsUnix() {
		var err error
		if l.sock, err = statSocketFile(spec.Address); err != nil {
			return nil, fmt.Errorf("adopt %s: %w", l, err)
		}
	}
	return l, nil
}

// sockAddr is the address fd is bound to, as a net.Addr of network.
func sockAddr(fd int, network string) (net.Addr, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	var (
		ip   net.IP
		port int
		zone string
	)
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ip, port = net.IP(a.Addr[:]), a.Port
	case *unix.SockaddrInet6:
		ip, port = net.IP(a.Addr[:]), a.Port
		if a.ZoneId != 0 {
			zone = strconv.Itoa(int(a.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: network}, nil
	default:
		return nil, fmt.Errorf("fd %d: unexpected socket address %T", fd, sa)
	}
	if protoOf(network) == "udp" {
		return &net.UDPAddr{IP: ip, Port: port, Zone: zone}, nil
	}
	return &net.TCPAddr{IP: ip, Port: port, Zone: zone}, nil
}
