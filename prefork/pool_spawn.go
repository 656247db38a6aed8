package prefork

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	proto "github.com/nsfd/nsfd/worker"
)

// startProcess starts one worker through the shim, on the pool's process
// backend (Config.Procs): the listeners become fds 3.., stdout and stderr go
// to Config.Output, and the backend tells the pool once the worker has
// exited (workerExited). maxReq is the worker's own max_requests limit (0:
// unlimited).
func (p *Pool) startProcess(ctx context.Context, slot, maxReq int) (*Process, error) {
	c := &p.cfg
	if c.Preload {
		return p.startPreloaded(ctx, slot, maxReq)
	}
	argv := append([]string{}, c.Shim...)
	argv = append(argv, "-ppid", strconv.Itoa(os.Getpid()))
	argv = append(argv, c.Exec.shimArgs()...)
	direct := &DirectExec{Command: c.Command, Exec: c.Exec, PPID: os.Getpid()}
	p.spawnedCg = nil
	if c.Cgroup != nil {
		cg, err := c.Cgroup.newWorker()
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", c.Command[0], err)
		}
		for _, f := range cg.procsFiles() {
			argv = append(argv, "-cgroup", f)
		}
		direct.Cgroups = cg.procsFiles()
		direct.IntoCgroup = cg.v2Dir()
		p.spawnedCg = cg
	}
	argv = append(argv, "--")
	argv = append(argv, c.Command...)
	files := make([]*os.File, len(c.Listeners))
	for i, l := range c.Listeners {
		files[i] = l.File()
	}
	env := p.workerEnv(slot, maxReq)
	attach := func(int) {}
	if p.nsock != nil {
		// One socket for every worker (Linux: the kernel names the sender),
		// or one of the worker's own (elsewhere: the socket names it).
		var path string
		path, attach = p.nsock.endpoint()
		env = append(env, proto.EnvNotifySocket+"="+path)
	}
	proc, err := c.Procs.Start(ctx, Command{
		Argv:   argv,
		Shim:   true,
		Env:    env,
		Files:  files,
		Output: c.Output,
		Exited: func(proc *Process) { p.workerExited(exitEvent{pid: proc.Pid, proc: proc}) },
		Owner:  p,
		Direct: direct,
	})
	return p.started(proc, err, attach, "")
}

// started finishes a worker's start, by the shim or direct spawn or from a
// fork-server (what: how, for the error): its notify endpoint attached to
// its pid, or, if it failed, released with its control group.
func (p *Pool) started(proc *Process, err error, attach func(pid int), what string) (*Process, error) {
	if err != nil {
		attach(0)
		if p.spawnedCg != nil {
			p.spawnedCg.remove()
			p.spawnedCg = nil
		}
		return nil, fmt.Errorf("start %s: %s%w", p.cfg.Command[0], what, err)
	}
	attach(proc.Pid)
	return proc, nil
}

// workerEnv is the master's environment without another supervisor's
// protocol variables, then the daemon's env, then the protocol's but
// NOTIFY_SOCKET, which startProcess adds; of a key set twice, the later
// value.
func (p *Pool) workerEnv(slot, maxReq int) []string {
	c := &p.cfg
	drop := []string{proto.EnvListenFDs, proto.EnvListenPID, proto.EnvListenFDNames, proto.EnvNotifySocket, proto.EnvWatchdogUSec, proto.EnvWatchdogPID, proto.EnvMaxRequests, proto.EnvLoadBoard}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, k) {
			env = append(env, kv)
		}
	}
	env = append(env, c.Env...)
	names := make([]string, len(c.Listeners))
	for i := range names {
		names[i] = c.Name
	}
	env = append(env,
		proto.EnvListenFDs+"="+strconv.Itoa(len(c.Listeners)),
		proto.EnvListenFDNames+"="+strings.Join(names, ":"),
		proto.EnvDaemon+"="+c.Name,
		proto.EnvWorker+"="+strconv.Itoa(slot),
		proto.EnvNode+"="+c.Node,
	)
	if c.Watchdog > 0 {
		env = append(env, proto.EnvWatchdogUSec+"="+strconv.FormatInt(c.Watchdog.Microseconds(), 10))
	}
	if maxReq > 0 {
		env = append(env, proto.EnvMaxRequests+"="+strconv.Itoa(maxReq))
	}
	env = append(env, p.board.env()...)
	return lastWins(env)
}

// lastWins keeps one entry per key of env, with the last value given: the
// daemon's env over the master's own (GOMAXPROCS in a daemon's [env] with
// the master started with one). execve passes duplicates on, and Go's and
// C's getenv read the first.
func lastWins(env []string) []string {
	at := make(map[string]int, len(env))
	out := env[:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := at[k]; ok {
			out[i] = kv
			continue
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	return out
}
