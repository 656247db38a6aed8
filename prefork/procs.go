package prefork

import (
	"context"
	"io"
	"os"
)

// Procs is a process backend: it starts the workers of every pool of a
// master and watches them, reading their output and learning of their
// exits. A master opens one (Pump on Linux) and hands it to each pool in
// Config.Procs; it closes it once every pool has stopped.
//
// What a backend promises, whatever the system:
//
//   - the process gets Command.Files as fds 3, 4, … and nothing else
//     beyond 0–2; its stdout and stderr are pipes the backend reads;
//   - it leads a process group of its own (the pool signals the group to
//     end what the worker forked), and it dies with the master;
//   - it is not reaped: the pool reaps it with (*Process).Wait once
//     Exited was called, so its pid cannot be reused before the pool has
//     forgotten it;
//   - Exited is called once per process, after everything the process
//     wrote before it exited has been handed to its Output writers: a
//     worker's last lines come before its exit.
type Procs interface {
	// Start starts c's process and watches it until it has exited and its
	// pipes are closed. It returns once the process runs (or failed to
	// start, and then nothing of c is left open or called).
	Start(ctx context.Context, c Command) (*Process, error)
	// Drop closes what is left of the watches of owner's processes (pipes
	// that a worker's children still hold, processes not yet reported),
	// after reading what is in those pipes now; their exits are not
	// reported. A pool calls it when it stops. It returns once that is
	// done.
	Drop(owner any)
}

// Command is one worker process for a Procs to start.
type Command struct {
	// Argv is the program and its arguments; Argv[0] is a path, run as it
	// is (the exec shim).
	Argv []string
	// Shim says Argv runs the exec shim (RunShim), which a backend may
	// hand what only the shim takes (the portable backend's lifeline).
	Shim bool
	// Env is the process's whole environment, KEY=VALUE.
	Env []string
	// Files become fds 3, 4, … in the process: the daemon's listeners.
	Files []*os.File
	// Output returns where one stream ("stdout" or "stderr") of the
	// process goes; nil discards. Its writer is used as Config.Output says.
	Output func(pid int, stream string) io.WriteCloser
	// Exited is called once the process has exited and its output up to
	// then is written, with the process to reap. It is called from the
	// backend's goroutine and must not block.
	Exited func(*Process)
	// Owner is whom the process belongs to, for Drop: the pool.
	Owner any
	// Direct, when set, is the same worker for a backend that forks and
	// execs it itself, with one exec and no shim; Argv is the shim's
	// command line for the others.
	Direct *DirectExec
}

// exitedFunc is c.Exited bound to proc, holding nothing else of c: a
// backend keeps it for the process's life, and c's environment, argv and
// control-group paths (~2 KiB a worker) would otherwise stay with it.
func (c *Command) exitedFunc(proc *Process) func() {
	exited := c.Exited
	return func() { exited(proc) }
}

// DirectExec is a worker's program and process settings, for a backend
// that starts it without the exec shim (the Pump, on Linux with cgo): it
// does in the forked child what the shim does, with LISTEN_PID (and
// WATCHDOG_PID with a watchdog) set to the child's pid.
type DirectExec struct {
	Command []string    // the program and its arguments, found in Env's PATH
	Exec    ExecOptions // its process settings
	Cgroups []string    // control files it joins (writes its pid to) before anything else
	// IntoCgroup is the cgroup2 directory whose cgroup.procs is in Cgroups,
	// for a backend that can clone the child straight into it
	// (CLONE_INTO_CGROUP); "" if none.
	IntoCgroup string
	PPID       int // the master's pid: the child does not outlive it
}

// TreeKiller is what a process backend may offer beyond Procs: ending
// everything a worker started, wherever it went (its process group, its
// control group, the orphans it left with the master), with SIGKILL. A pool
// calls it once a worker has exited, before reaping it (so the pid is still
// the worker's), and when a worker's graceful_timeout has passed. Without
// it, a pool kills the worker's process group.
type TreeKiller interface {
	// KillTree sends SIGKILL to what is left of worker pid's tree.
	KillTree(pid int) error
}
