package prefork

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	proto "github.com/nsfd/nsfd/worker"
)

// With Config.Preload the pool starts the daemon's program once as a
// fork-server (EnvPreloadFD names its end of a socketpair), which loads the
// application and then forks each worker on the pool's request, over the
// line protocol of docs/protocol.md ("Preload fork-server"). A worker is
// double-forked so that it becomes the master's child (the master is a
// child subreaper): the pump watches its pidfd and its output (two FIFOs
// the master makes, since core Perl cannot receive descriptors), and the
// pool reaps it, as it would an exec'd worker. Workers do not depend on
// their fork-server once forked: a fork-server that dies only makes the
// next spawn start a new one (a failed start, with the pool's back-off),
// and a roll (a new configuration, a restart) starts a new one and stops
// the old one once the new one has loaded the application.

// EnvPreloadFD names, in the fork-server's environment, its end of the
// control socket.
const EnvPreloadFD = "NSFD_PRELOAD_FD"

// ErrPreloadUnsupported: the process backend cannot preload (only the
// Linux pump can: it needs the master to be a subreaper and pidfds).
var ErrPreloadUnsupported = errors.New("preload needs the pump process backend (Linux); this master uses another")

// preloadProcs is a process backend that can start preloaded workers.
type preloadProcs interface {
	// forkPreloaded asks fs for a worker with the environment changes env
	// (KEY=VALUE), joins it to cgroups, and watches it as Start would.
	forkPreloaded(ctx context.Context, fs *forkServer, env []string, cgroups []string, c Command) (*Process, error)
}

// forkServer is the master's side of one fork-server.
type forkServer struct {
	proc *Process
	gen  int           // the pool generation it serves
	ctl  *os.File      // the master's end of the control socket
	rd   *bufio.Reader // replies
	dir  string        // where the output FIFOs are made
	uid  int
	gid  int
	seq  int
	cg   *workerCgroup // its control group; nil without
	// failed: it broke the protocol and is being stopped (set on the
	// pool's goroutine, like seq).
	failed bool

	reapOnce sync.Once
	done     chan struct{} // closed once it has exited
}

// alive reports whether the fork-server has not exited.
func (fs *forkServer) alive() bool {
	select {
	case <-fs.done:
		return false
	default:
		return true
	}
}

// reap waits for the exited fork-server proc, once.
func (fs *forkServer) reap(proc *Process) {
	fs.reapOnce.Do(func() {
		_, _ = proc.Wait()
		if fs.cg != nil {
			fs.cg.remove()
		}
		close(fs.done)
	})
}

// stop asks the fork-server to leave (EOF on its control socket, then
// SIGTERM), and kills its process group if it is still there after
// grace. Its workers are not its children: they stay.
func (fs *forkServer) stop(grace time.Duration) {
	_ = fs.ctl.Close()
	_ = fs.proc.Signal(syscall.SIGTERM)
	select {
	case <-fs.done:
	case <-time.After(grace):
		_ = killGroup(fs.proc.Pid)
		select { // gone, not only signalled, when stop returns
		case <-fs.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// startPreloaded starts one worker from the pool's fork-server, starting
// the fork-server first if there is none for the current generation.
func (p *Pool) startPreloaded(ctx context.Context, slot, maxReq int) (*Process, error) {
	c := &p.cfg
	pre, ok := c.Procs.(preloadProcs)
	if !ok {
		return nil, fmt.Errorf("start %s: %w", c.Command[0], ErrPreloadUnsupported)
	}
	fs, err := p.forkServerFor(ctx)
	if err != nil {
		return nil, fmt.Errorf("start %s: preload fork-server: %w", c.Command[0], err)
	}
	env := []string{proto.EnvWorker + "=" + strconv.Itoa(slot)}
	if maxReq > 0 {
		env = append(env, proto.EnvMaxRequests+"="+strconv.Itoa(maxReq))
	}
	attach := func(int) {}
	if p.nsock != nil {
		var path string
		path, attach = p.nsock.endpoint()
		env = append(env, proto.EnvNotifySocket+"="+path)
	}
	var cgroups []string
	if c.Cgroup != nil {
		cg, err := c.Cgroup.newWorker()
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", c.Command[0], err)
		}
		cg.late = true
		cgroups, p.spawnedCg = cg.procsFiles(), cg
	}
	proc, err := pre.forkPreloaded(ctx, fs, env, cgroups, Command{
		Output: c.Output,
		Exited: func(proc *Process) { p.workerExited(exitEvent{pid: proc.Pid, proc: proc}) },
		Owner:  p,
	})
	if fs.failed && p.forkSrv == fs { // it broke the protocol: stopped as a retired one, waited for at the pool's stop
		p.forkSrv = nil
		p.retireForkServer(fs)
	}
	return p.started(proc, err, attach, "preloaded worker: ")
}

// errLoading: the pool's fork-server is loading the application; workers
// start once it is ready (the pool's loop hears it: forkServerLoaded).
var errLoading = errors.New("the fork-server is loading the application")

// forkServerLoad is how the loading of a fork-server ended.
type forkServerLoad struct {
	fs      *forkServer
	attempt int // the pool's start attempt when it was started
	err     error
}

// forkServerFor returns the fork-server of the pool's generation if it is
// ready. If there is none (or it has exited) it starts one and returns
// errLoading: the pool's goroutine does not wait while the application
// loads, which may take as long as ready_timeout, but goes on answering
// status requests, stops and exits (the old fork-server, if any, keeps
// forking nothing and its workers keep serving until the new one is ready).
func (p *Pool) forkServerFor(ctx context.Context) (*forkServer, error) {
	if fs := p.forkSrv; fs != nil && !fs.failed && fs.alive() && fs.gen == p.gen {
		return fs, nil
	}
	if p.forkLoading != nil {
		return nil, errLoading
	}
	fs, err := p.startForkServer(ctx)
	if err != nil {
		return nil, err
	}
	p.forkLoading = fs
	c := &p.cfg
	ready, grace, stop, attempt := c.ReadyTimeout, c.GracefulTimeout, p.stop, p.attempt
	go func() {
		err := awaitForkServer(ctx, fs, ready, grace, stop)
		p.forkLoaded <- forkServerLoad{fs: fs, attempt: attempt, err: err}
	}()
	return nil, errLoading
}

// forkServerLoaded takes the outcome of a fork-server's loading, on the
// pool's goroutine: a failed one counts as a failed start.
func (p *Pool) forkServerLoaded(l forkServerLoad, now time.Time) {
	p.forkLoading = nil
	switch {
	case p.stopping || l.fs.gen != p.gen: // a roll came meanwhile: the next spawn starts its own
		if l.err == nil {
			p.retireForkServer(l.fs)
		}
	case l.err != nil:
		p.cfg.Logger.Error("cannot start worker", "error", fmt.Errorf("start %s: preload fork-server: %w", p.cfg.Command[0], l.err))
		p.failedStart(now, l.attempt)
	default:
		if old := p.forkSrv; old != nil && !old.failed {
			p.retireForkServer(old)
		}
		p.forkSrv = l.fs
	}
}

// retireForkServer stops fs off the pool's goroutine; stopForkServer
// waits for it.
func (p *Pool) retireForkServer(fs *forkServer) {
	grace := p.cfg.GracefulTimeout
	p.forkRetiring.Add(1)
	go func() {
		defer p.forkRetiring.Done()
		fs.stop(grace)
	}()
}

// stopForkServer stops the pool's fork-server as the pool stops, and one
// still loading.
func (p *Pool) stopForkServer() {
	if p.forkLoading != nil {
		if l := <-p.forkLoaded; l.err == nil { // it sees the pool stop, and stops the fork-server if it fails
			l.fs.stop(p.cfg.GracefulTimeout)
		}
		p.forkLoading = nil
	}
	if p.forkSrv != nil {
		p.forkSrv.stop(p.cfg.GracefulTimeout)
		p.forkSrv = nil
	}
	p.forkRetiring.Wait()
}

// preloadDir is where the pool makes its workers' output FIFOs: next to
// its notify socket (in run_dir), else in the temporary directory.
func (p *Pool) preloadDir() string {
	base := os.TempDir()
	if p.cfg.NotifyPath != "" {
		base = filepath.Dir(p.cfg.NotifyPath)
	}
	return filepath.Join(base, "preload."+p.cfg.Name)
}

// readReply reads one reply line of fs within ctx, or until stop is
// closed.
func readReply(ctx context.Context, fs *forkServer, stop <-chan struct{}) (string, error) {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := fs.rd.ReadString('\n')
		ch <- res{strings.TrimSuffix(line, "\n"), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return "", fmt.Errorf("fork-server %d: read reply: %w", fs.proc.Pid, r.err)
		}
		return r.line, nil
	case <-ctx.Done():
	case <-stop:
	case <-fs.done:
	}
	_ = fs.ctl.SetReadDeadline(time.Now()) // unblocks the reader
	<-ch
	_ = fs.ctl.SetReadDeadline(time.Time{})
	if !fs.alive() {
		return "", fmt.Errorf("fork-server %d exited", fs.proc.Pid)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return "", ErrStopped
}

// startForkServer starts the daemon's program as the pool's fork-server, as
// a worker would be started (credentials, chroot, rlimits, a control group
// of its own, the listeners at fds 3..), with its control socket after the
// listeners. awaitForkServer waits until it says it has loaded the
// application.
func (p *Pool) startForkServer(ctx context.Context) (*forkServer, error) {
	c := &p.cfg
	syscall.ForkLock.RLock() // no fork between the socketpair and close-on-exec
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil { // pollable: read deadlines work
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ctl := os.NewFile(uintptr(fds[0]), "preload-control")
	theirs := os.NewFile(uintptr(fds[1]), "preload-control")
	defer theirs.Close()

	dir := p.preloadDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ctl.Close()
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	fs := &forkServer{gen: p.gen, ctl: ctl, rd: bufio.NewReader(ctl), dir: dir, uid: c.Exec.UID, gid: c.Exec.GID, done: make(chan struct{})}
	if fs.uid >= 0 || fs.gid >= 0 {
		if err := os.Chown(dir, fs.uid, fs.gid); err != nil {
			ctl.Close()
			return nil, fmt.Errorf("preload directory: %w", err)
		}
	}

	files := make([]*os.File, 0, len(c.Listeners)+1)
	for _, l := range c.Listeners {
		files = append(files, l.File())
	}
	files = append(files, theirs)
	env := append(p.workerEnv(0, 0), EnvPreloadFD+"="+strconv.Itoa(3+len(c.Listeners)))
	argv := append([]string{}, c.Shim...)
	argv = append(argv, "-ppid", strconv.Itoa(os.Getpid()))
	argv = append(argv, c.Exec.shimArgs()...)
	direct := &DirectExec{Command: c.Command, Exec: c.Exec, PPID: os.Getpid()}
	if c.Cgroup != nil {
		cg, err := c.Cgroup.newWorker()
		if err != nil {
			ctl.Close()
			return nil, err
		}
		for _, f := range cg.procsFiles() {
			argv = append(argv, "-cgroup", f)
		}
		direct.Cgroups, direct.IntoCgroup, fs.cg = cg.procsFiles(), cg.v2Dir(), cg
	}
	argv = append(argv, "--")
	argv = append(argv, c.Command...)
	proc, err := c.Procs.Start(ctx, Command{
		Argv:   argv,
		Shim:   true,
		Env:    env,
		Files:  files,
		Output: c.Output,
		Exited: fs.reap, // maybe before Start has returned: not fs.proc
		Owner:  fs,      // not the pool's: its exit is seen and reaped even after the pool's Drop
		Direct: direct,
	})
	if err != nil {
		ctl.Close()
		if fs.cg != nil {
			fs.cg.remove()
		}
		return nil, err
	}
	fs.proc = proc
	c.Logger.Info("preload fork-server started", "pid", proc.Pid)
	return fs, nil
}

// awaitForkServer waits until fs says it has loaded the application
// ("ready"), for at most ready, or until stop is closed; a fork-server
// that does not is stopped (SIGKILL after grace). It runs off the pool's
// goroutine.
func awaitForkServer(ctx context.Context, fs *forkServer, ready, grace time.Duration, stop <-chan struct{}) error {
	rctx, cancel := context.WithTimeout(ctx, ready)
	defer cancel()
	line, err := readReply(rctx, fs, stop)
	if err != nil {
		select { // end of file comes before the pump reports the exit
		case <-fs.done:
		case <-time.After(time.Second):
		}
	}
	switch {
	case err == nil && line != "ready":
		err = fmt.Errorf("fork-server %d: %q instead of \"ready\"", fs.proc.Pid, line)
	case err != nil && !fs.alive(): // whether the reply's reader saw the end of file or the exit first
		err = fmt.Errorf("fork-server %d exited before it said \"ready\" (does the program run a preload helper's loop? docs/protocol.md)", fs.proc.Pid)
	}
	if err != nil {
		fs.stop(grace)
	}
	return err
}
