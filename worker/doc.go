// Package worker is the worker side of nsfd's worker contract
// (docs/protocol.md): what a Go program needs to be one of a daemon's
// pre-forked workers, and the one home of the protocol's names. It needs
// nothing but the standard library and golang.org/x/sys, no cgo, and builds
// on every unix (and on Windows, where Notify and Serve's own listeners work
// and inherited ones are refused); go-systemd keeps its activation and
// daemon packages apart from any manager for the same reason.
//
// The master (package prefork) starts each worker with:
//
//	fd 3..     the daemon's listeners        LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
//	           a datagram status socket      NOTIFY_SOCKET (READY=1, BUSY=1/0, REQUESTS=n, WATCHDOG=1, STATUS=, STOPPING=1)
//	           a liveness interval           WATCHDOG_USEC, WATCHDOG_PID (when `watchdog` is set)
//	           who it is                     NSFD_DAEMON, NSFD_WORKER, NSFD_NODE
//	           its own max_requests          NSFD_MAX_REQUESTS (unset: unlimited)
//	           its pool's load board         NSFD_LOAD_BOARD (Balance)
//	           where other daemons are       NSFD_RESOLVER, NSFD_REGISTRY_TYPE, NSFD_REGISTRY_DSN, NSFD_REGISTRY_MAX_AGE
//	           how its daemon encodes        NSFD_ENCODING
//	           its secured calls, if any     NSFD_TLS_CERT, NSFD_TLS_KEY, NSFD_TLS_CLIENT_CA, NSFD_TOKENS
//
// Their names are the Env* constants, the notify words the Notify* ones
// (and their keys Key*, for readers); MasterEnv lists every variable.
//
// Files and Listeners take the inherited sockets as sd_listen_fds(3) does;
// Notify sends status words, WatchdogInterval and MaxRequests read what the
// master asks for. Serve (a Server) does all of it: it accepts on every
// inherited listener, reports READY=1, reports going busy at once and going
// idle after a short grace cancelled by the next connection (Load), so
// back-to-back connections cost the master two datagrams in all rather than
// two each, pings the watchdog, and drains on SIGTERM. Serve serves
// DefaultConcurrency (64) connections at once, on one core (DefaultCores,
// GOMAXPROCS 1): run about one Go worker per core. To the master such a worker is one server of that capacity, busy
// when full and idle again below DefaultIdleMark; while full it does not
// accept, so no connection waits inside it. A worker that
// accepts by itself counts its requests with a Load, or with Busy and Idle.
// When the master names a certificate (the daemon's tls_cert), Serve
// serves TLS on every stream listener (TLSConfig), the handshake done
// before the Handler gets the connection; the tokens file is the wire
// server's to check (wire.EnvAuth).
//
// # Logging
//
// What Serve and Load cannot return (a failed report, an accept error they
// retry) goes to a *log/slog.Logger, Server.Logger and Load.Logger, by
// default slog.Default(), which writes to stderr, where the master reads
// every line into the central log. The wire server logs the same way
// (wire.ServerOptions.Logger). slog is the standard library's structured
// logger: a program plugs in the handler it likes (JSON, text, an adapter to
// its own logger) without this package depending on any.
package worker
