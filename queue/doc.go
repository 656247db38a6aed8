// Package queue is nsfd's built-in queue daemon: the spool of asynchronous
// calls, the Perl framework's Spooler, served over the wire protocol.
//
// A daemon file with `builtin = queue` makes the master run
// `nsfd __nsfd_builtin queue` as that daemon's workers, with its listeners
// (by default a UNIX socket RUN_DIR/NAME.sock) as fds 3.. like any worker;
// supervisor.RunBuiltin calls Run. The spool lives in the registry database,
// which the worker finds in its environment:
//
//	NSFD_REGISTRY_TYPE   sqlite | postgres (default sqlite)
//	NSFD_REGISTRY_DSN    the registry's file path or PostgreSQL DSN (required)
//	NSFD_NODE            the node name, the "@node" of job ids (default: the host name)
//	NSFD_ENCODING        the wire codec the daemon registered (default json)
//
// The commands (put, get, mod, del, list, virgin, wait) and their data are
// those of the client package, which is the queue's client: a daemon puts a
// job with client.Enqueue and stores its result with client.Finish, and a
// caller waits for it with client.Wait (which Call does for it). A `wait`
// is held until the job is finished, without polling: the registry's spool
// wakes it (PostgreSQL LISTEN/NOTIFY; for SQLite, a write to the database
// file seen through inotify, so that a result stored by another queue worker
// process wakes it too). A queue worker serves many connections at once
// (Options.Concurrency), since waiting callers hold theirs.
//
// Finished jobs are purged after Options.Retain (a day by default).
package queue
