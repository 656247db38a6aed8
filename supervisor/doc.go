// Package supervisor is the nsfd master: it binds each daemon's listeners,
// runs one pool of workers per daemon, reloads etc/ by diff (added files
// start, removed ones drain, pool-size changes apply in place, any other
// change rolls the workers), and drains the daemons in dependency order on
// shutdown: a daemon stops only after every daemon that requires it. The
// registrar keeps the registry in step with the daemons (and opens it anew
// when a SQLite file was deleted); the control socket serves the API of
// the CLI, and the resolver socket (registry/remote, NSFD_RESOLVER) serves
// the registry's Resolve to the workers, and the registry's changes, which
// the master watches once for all of them (changeHub: PostgreSQL's
// LISTEN/NOTIFY). It links no registry driver and no builtin: the nsfd
// command does.
//
// It opens nothing of its own accord. The caller — cmd/nsfd, which is only
// wiring — loads nsfd.ini (config.LoadMaster), makes the run directory
// (PrepareRunDir), opens the central log (logging.Open) and the process
// backend (prefork.OpenBackend: Pump or Portable), and hands them to New;
// it closes them after Run, the backend first. A daemon's pool comes from
// Options.NewPool (prefork.NewPool by default) behind the small Pool
// interface, so the reload diff, the drain order and the control API are
// tested on fake pools without a process; each pool gets the master's one
// process backend (Options.Procs) in its prefork.Config.
//
// The Supervisor's state belongs to the goroutine running Run; signals and
// API calls reach it as requests on a channel. Run passes its own context
// to each request: what a request starts (a daemon, a reload) is the
// master's, while the caller's context bounds only the caller's wait.
package supervisor
