//go:build unix

package prefork

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// Process is a worker a backend started, as its pool holds it: a pid,
// signalled and reaped by pid. That is safe because a worker is reaped by
// its pool alone (the backends never reap, the orphan reaper leaves tracked
// workers be): until the pool's Wait, its zombie keeps the pid from being
// reused. It holds no descriptor, where an os.Process on Linux holds a
// pidfd of its own beside the backend's (four descriptors a worker instead
// of three).
type Process struct {
	Pid int // the worker's process id

	// forget, if set, is told the pid once the process is reaped: the
	// orphan reaper's (reaper.forget), which counts the process as a worker
	// until then.
	forget func(pid int)

	mu     sync.Mutex
	reaped bool
}

// newProcess is the handle of the process pid.
func newProcess(pid int) *Process { return &Process{Pid: pid} }

// fromOS is the handle of a process os/exec started, whose own handle
// (a pidfd on Linux) it releases: the backend watches the process its way.
func fromOS(p *os.Process) *Process {
	proc := newProcess(p.Pid)
	_ = p.Release()
	return proc
}

// Signal sends sig to the process; os.ErrProcessDone once it is reaped.
func (p *Process) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return errors.New("unsupported signal type")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return os.ErrProcessDone
	}
	if err := syscall.Kill(p.Pid, s); err != nil {
		if err == syscall.ESRCH {
			return os.ErrProcessDone
		}
		return os.NewSyscallError("kill", err)
	}
	return nil
}

// Kill sends SIGKILL to the process.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// Wait waits for the process to exit and reaps it, returning its status.
// A second Wait returns ECHILD.
func (p *Process) Wait() (syscall.WaitStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return 0, os.NewSyscallError("wait", syscall.ECHILD)
	}
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(p.Pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		p.reaped = true
		if p.forget != nil {
			p.forget(p.Pid)
		}
		if err != nil {
			return 0, os.NewSyscallError("wait", err)
		}
		return ws, nil
	}
}
