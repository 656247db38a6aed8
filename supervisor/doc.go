// Package supervisor is the nsfd master: it loads etc/ (one file per
// daemon beside nsfd.ini), binds each daemon's listeners, runs one
// prefork.Pool per daemon, sends every worker's output to the central log,
// and drains the daemons in dependency order on shutdown.
//
// The Supervisor's state belongs to the goroutine running Run; signals and
// API calls reach it as requests on a channel.
package supervisor
