// Package supervisor is the nsfd master: it loads etc/ (one file per
// daemon beside nsfd.ini), binds each daemon's listeners, runs one
// prefork.Pool per daemon, sends every worker's output to the central log,
// and drains the daemons in dependency order on shutdown. The registrar
// keeps the registry in step with the daemons (and opens it anew when a
// SQLite file was deleted); the control socket serves the API of the CLI,
// and the resolver socket (registry/remote, NSFD_RESOLVER) serves the
// registry's Resolve to the workers, and the registry's changes, which the
// master watches once for all of them (changeHub: PostgreSQL's
// LISTEN/NOTIFY). It links no registry driver and no
// builtin: the nsfd command does.
//
// The Supervisor's state belongs to the goroutine running Run; signals and
// API calls reach it as requests on a channel.
package supervisor
