// Package prefork is both halves of nsfd's worker protocol, as net/http holds
// both client and server.
//
// The master side binds a daemon's listeners once (Bind) and runs a Pool of
// worker processes that inherit them, in the Net::Server::PreFork style:
// min/max servers, min/max spare servers, max_requests, restarts with
// exponential back-off, and a fatal state instead of a hot loop. Connections
// go from the kernel's accept queue straight to a worker: the master is never
// on the data path.
//
// Workers are started through a re-exec of the master's own binary (the exec
// shim, RunShim), which sets LISTEN_PID to its own pid and execs the command
// in place, so the worker is a direct child of the master and sd_listen_fds
// peers accept the hand-over:
//
//	fd 3..     the daemon's listeners        LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
//	           a datagram status socket      NOTIFY_SOCKET (READY=1, BUSY=1/0, WATCHDOG=1, STATUS=, STOPPING=1)
//	           who it is                     NSFD_DAEMON, NSFD_WORKER, NSFD_NODE
//	           its own max_requests          NSFD_MAX_REQUESTS (unset: unlimited)
//
// The master reads NOTIFY_SOCKET with SO_PASSCRED, so each datagram carries
// the sender's pid as the kernel saw it: a worker cannot speak for another.
// One goroutine owns each pool's state; spawns, exits, status messages and
// timers are events on its loop, and the spare-server policy (Decide) is a
// pure function of the scoreboard, run on each event rather than on a timer.
//
// The worker side (Files, Listeners, Notify, Serve) lets a Go program be a
// worker in a few lines; docs/protocol.md states the same contract for any
// language.
package prefork
