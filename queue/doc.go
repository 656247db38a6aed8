// Package queue is nsfd's built-in queue daemon: the spool of asynchronous
// calls, the Perl framework's Spooler, served over the wire protocol.
//
// A daemon file with `builtin = queue` makes the master run
// `nsfd __nsfd_builtin queue` as that daemon's workers, with its listeners
// (by default a UNIX socket RUN_DIR/NAME.sock) as fds 3.. like any worker;
// the nsfd command's builtin dispatch calls Run. The spool lives in the
// registry database, which the worker finds in its environment:
//
//	NSFD_REGISTRY_TYPE   sqlite | postgres (default sqlite)
//	NSFD_REGISTRY_DSN    the registry's file path or PostgreSQL DSN (required)
//	NSFD_NODE            the node name, the "@node" of job ids (default: the host name)
//	NSFD_ENCODING        the wire codec the daemon registered (default json)
//
// The package holds the queue's protocol, its commands (Cmd*), their data
// (SpoolArgs) and results (Job, Jobs), and the spool they work on (Spool, in
// the registry's database: SpoolOf). Package client is the queue's client: a
// daemon puts a job with client.Enqueue and stores its result with
// client.Finish, and a caller waits for it with client.Wait (which Call does
// for it).
//
// The queue daemon's commands, each with a SpoolArgs as data and a Job (or
// Jobs, {"jobs": [...]}) as result:
//
//	put    {"daemon", "request"}          a new job, status "virgin"; its id is made by the queue
//	get    {"id"}                         the job, or 2303
//	mod    {"id", "status", "response"}   store a status and/or result; a result without a status
//	                                      sets "done" (code < 2000) or "failed"
//	del    {"id"}                         delete the job, or 2303
//	list   {"daemon", "status", "limit"}  jobs, oldest first
//	virgin {"daemon", "limit"}            list of the jobs nobody touched (the Perl Spooler's verb)
//	wait   {"id", "timeout_ms"}           the job once finished; 1001 with the job if the timeout
//	                                      passed first
//
// Job ids are made as the Perl Spooler made them, a hash and the node:
// 32 hex digits of a SHA-256 over the user, command, daemon, time, process
// and 8 random bytes, then "@" and the queue's node name
// ("3f2a…c9@alpha"), so they never collide across nodes and say where the
// job was put.
//
// A `wait` is held until the job is finished, without polling: the spool
// wakes it (PostgreSQL LISTEN/NOTIFY; for SQLite, a write to the database
// file seen through inotify, so that a result stored by another queue worker
// process wakes it too). A queue worker serves many connections at once
// (Options.Concurrency), since waiting callers hold theirs.
//
// Finished jobs are purged after Options.Retain (a day by default).
package queue
