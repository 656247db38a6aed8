// Package prefork is the master side of nsfd's worker protocol; the worker
// side, and the protocol's names, are package worker.
//
// It binds a daemon's listeners once (Bind) and runs a Pool of
// worker processes that inherit them, in the Net::Server::PreFork style:
// min/max servers, min/max spare servers, max_requests, restarts with
// exponential back-off, and a fatal state instead of a hot loop. Connections
// go from the kernel's accept queue straight to a worker: the master is never
// on the data path.
//
// On Linux (with cgo) the pump forks each worker itself and execs the
// command once (Command.Direct, spawn_direct_linux.c): the child sets
// LISTEN_PID to its own pid first. Elsewhere, and with NSFD_SPAWN=shim,
// workers start through a re-exec of the master's own binary (the exec
// shim, RunShim) that does the same. Either way the worker is a direct
// child of the master and sd_listen_fds peers accept the hand-over:
//
//	fd 3..     the daemon's listeners        LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
//	           a datagram status socket      NOTIFY_SOCKET (READY=1, BUSY=1/0, REQUESTS=n, WATCHDOG=1, STATUS=, STOPPING=1)
//	           who it is                     NSFD_DAEMON, NSFD_WORKER, NSFD_NODE
//	           its own max_requests          NSFD_MAX_REQUESTS (unset: unlimited)
//
// On Linux the master reads NOTIFY_SOCKET with SO_PASSCRED, so each
// datagram carries the sender's pid as the kernel saw it: a worker cannot
// speak for another. With Config.NotifyAll (notify_access = all) a datagram
// from a process in a worker's tree counts for the worker: its control group,
// else its parent chain (notify_access.go). macOS and FreeBSD attach no pid to a datagram, so there
// each worker gets a socket of its own, PATH.N, bound before it starts and
// removed once it is reaped (workerSockets): the socket names the sender.
// One goroutine owns each pool's state; spawns, exits, status messages and
// timers are events on its loop, and the spare-server policy (Decide) is a
// pure function of the scoreboard, run on each event rather than on a timer.
// Why a worker went is an ExitCause, where a pool is a PoolState; their
// String is what metrics, the registry and `nsfd status` show.
//
// A pool starts its workers on a process backend, Procs, given in
// Config.Procs: the master opens one and shares it among all its pools. The
// backend spawns a worker (its argv, environment and listener fds, stdout
// and stderr on pipes, a process group of its own, death with the master),
// hands its output to Config.Output, and reports its exit only after what
// the worker wrote before it; the pool reaps it. OpenBackend opens the one
// a master uses ([nsfd] process_backend, or NSFD_PROCESS_BACKEND):
//
//   - Pump, Linux's default: every worker of every pool writes to two pipes
//     and the master holds a pidfd of it, all three registered on one epoll
//     instance whose one goroutine reads the output and sees the exits — a
//     thousand idle workers cost the master no goroutine and no thread
//     each. A parent-death signal (SIGKILL) ends a worker with its master.
//   - Portable, on every unix and the only one on macOS and FreeBSD: os/exec
//     starts the worker, two goroutines parked on the runtime's poller read
//     its pipes, and an exit watcher learns of its exit without reaping it
//     (kqueue EVFILT_PROC/NOTE_EXIT on macOS and FreeBSD, SIGCHLD and
//     waitid(WNOWAIT) on Linux, where it runs so that it is tested). With no
//     parent-death signal, a keeper process (the master's binary again,
//     RunKeeperIfAsked) holds a pipe only the master writes to, is told each
//     worker's process group, and kills them all when the pipe ends — which
//     the kernel sees to however the master died, SIGKILL included.
//
// The tests in procs_test.go are what any backend must pass; the whole
// package's tests run on Portable with NSFD_PROCESS_BACKEND=portable.
//
// Containment: while a Pump is open the master is a child subreaper, so
// what a worker forks stays in the master's tree even after setsid and a
// double fork; the reaper reaps those orphans on SIGCHLD, never a worker.
// A backend that is a TreeKiller (Pump) ends a worker's whole tree — its
// process group and the orphans carrying its LISTEN_PID — once the worker
// has exited or its graceful_timeout has passed. With control groups
// (OpenCgroups: cgroup2, or cgroup2 beside v1 controllers on hybrid hosts)
// each daemon has a group with its Limits (Config.Cgroup) and each worker
// one below it, which the direct spawn clones the child straight into
// (CLONE_INTO_CGROUP, x86-64; the child joins the v1 groups of a hybrid
// host, and every group elsewhere, before the exec) and killed with
// cgroup.kill; OOM kills are told from other SIGKILLs by the group's
// counter, and GroupStats account for CPU, memory and processes. A worker
// starts with fds 0–2 and its listeners only: the forked child closes (the
// shim marks close-on-exec) every other fd. max_rss (Config.MaxRSS) replaces a worker whose memory
// stays above it, as max_requests does.
//
// A worker's requests are counted from REQUESTS=n, the number it has begun,
// or, for a worker that never sends it, from its BUSY=1 words.
// docs/protocol.md states the contract for any language; package worker
// lets a Go program be a worker in a few lines.
package prefork
