package prefork

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Pump is the Linux process backend. It starts each worker with a pidfd,
// a parent-death signal (SIGKILL) and a process group of its own, and
// watches the pipes and pidfds of every worker of every pool on one epoll
// instance, from one goroutine (see pump): a thousand idle workers cost the
// master no goroutine and no thread each.
//
// The master is a child subreaper while a Pump is open: what a worker forks
// and leaves behind becomes the master's child, is reaped when it exits, and
// is killed with the worker's tree (KillTree) or at Close.
type Pump struct {
	p   *pump
	r   *reaper
	low *lowFDs // for direct spawns; nil without

	closeOnce sync.Once
}

var (
	_ Procs      = (*Pump)(nil)
	_ TreeKiller = (*Pump)(nil)
)

// OpenPump opens the epoll instance and starts the pump's goroutine. Close
// it once every pool using it has stopped.
func OpenPump() (*Pump, error) {
	p, err := newPump()
	if err != nil {
		return nil, fmt.Errorf("start worker pump: %w", err)
	}
	r, err := newReaper()
	if err != nil {
		p.close()
		return nil, fmt.Errorf("start worker pump: %w", err)
	}
	b := &Pump{p: p, r: r}
	if directSpawn {
		b.low = openLowFDs()
	}
	return b, nil
}

// Start starts c's process and hands its pipes and pidfd to the pump.
func (b *Pump) Start(ctx context.Context, c Command) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		w    *watch
		proc *Process
		err  error
	)
	if c.Direct != nil && directSpawn {
		w, proc, err = b.startDirect(c)
	} else {
		w, proc, err = b.startShim(c)
	}
	if err != nil {
		return nil, err
	}
	w.owner = c.Owner
	w.exited = c.exitedFunc(proc)
	if c.Output != nil {
		for i, name := range streamNames {
			w.out[i] = c.Output(proc.Pid, name)
		}
	}
	if err := b.p.add(w); err != nil { // the pump was closed
		w.close()
		_ = killGroup(proc.Pid)
		_, _ = proc.Wait()
		return nil, fmt.Errorf("watch worker %d: %w", proc.Pid, err)
	}
	return proc, nil
}

// startShim starts c.Argv, the exec shim's command line, with os/exec.
func (b *Pump) startShim(c Command) (*watch, *Process, error) {
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env = c.Env
	cmd.ExtraFiles = c.Files
	cmd.Stdin = workerStdin()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	b.r.spawnMu.RLock() // no reaper pass between the fork and track: the worker is never taken for an orphan
	w, err := startWatched(cmd)
	if err == nil {
		b.r.track(cmd.Process.Pid)
	}
	b.r.spawnMu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	proc := fromOS(cmd.Process)
	proc.forget = b.r.forget
	return w, proc, nil
}

// startDirect forks and execs c.Direct itself: one exec, no shim
// (spawn_direct_linux.c). A step that fails in the child is reported as
// the shim reports it: a line on the worker's stderr and exit status 127,
// so that the pool sees a failed start either way.
func (b *Pump) startDirect(c Command) (*watch, *Process, error) {
	stdin, err := devNull()
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	pipes, err := outputPipes()
	if err != nil {
		return nil, nil, err
	}
	fds := make([]int, 0, 3+len(c.Files))
	fds = append(fds, int(stdin.Fd()), pipes[0][1], pipes[1][1])
	for _, f := range c.Files {
		fds = append(fds, int(f.Fd()))
	}
	b.r.spawnMu.RLock() // no reaper pass between the fork and track: the worker is never taken for an orphan
	var (
		pid, pidfd int
		childErr   error
	)
	b.low.with(fds, func(fds []int) { pid, pidfd, childErr, err = spawnDirect(c.Direct, c.Env, fds) })
	if err == nil {
		b.r.track(pid)
	}
	b.r.spawnMu.RUnlock()
	runtime.KeepAlive(c.Files)
	if err == nil && childErr != nil {
		// The child has exited 127: say why where the shim would.
		msg := "nsfd exec: " + childErr.Error() + "\n"
		unix.Write(pipes[1][1], []byte(msg))
	}
	unix.Close(pipes[0][1]) // the process holds the write ends now
	unix.Close(pipes[1][1])
	if err != nil {
		unix.Close(pipes[0][0])
		unix.Close(pipes[1][0])
		return nil, nil, err
	}
	proc := b.r.process(pid)
	return &watch{pid: pid, fds: [3]int{pipes[0][0], pipes[1][0], pidfd}}, proc, nil
}

// directSpawn: workers with a DirectExec are forked and exec'd by the
// pump itself, unless NSFD_SPAWN=shim asks for the exec shim (to compare
// them, or to rule the direct path out).
var directSpawn = haveDirectSpawn && os.Getenv("NSFD_SPAWN") != "shim"

// Drop closes what is left of owner's watches.
func (b *Pump) Drop(owner any) { b.p.drop(owner) }

// trackInherited tells the pump's orphan reaper that pid is a worker it
// did not start: one a master exec'd in place (an upgrade) inherited.
// Until then the reaper takes it for an orphan (a child outside the
// master's process group) and would reap it, taking its exit status from
// its pool. Adopt calls it.
func (b *Pump) trackInherited(pid int) {
	b.r.spawnMu.RLock()
	b.r.track(pid)
	b.r.spawnMu.RUnlock()
}

// KillTree sends SIGKILL to worker pid's process group and to what it left
// behind outside it: the orphans that came from it.
func (b *Pump) KillTree(pid int) error {
	err := killGroup(pid)
	b.r.killLeftovers(pid)
	return err
}

// Close stops the pump after closing what is left of every watch, and
// closes its epoll instance; it kills and reaps every orphan left (for at
// most orphanGrace). It is idempotent.
func (b *Pump) Close() {
	b.closeOnce.Do(func() {
		b.p.close()
		b.r.killAll(time.Now().Add(orphanGrace))
		b.r.release()
		b.low.close()
	})
}

// orphanGrace bounds how long Close waits for killed orphans to be reaped.
const orphanGrace = 5 * time.Second
