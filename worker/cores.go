package worker

import (
	"os"
	"runtime"
	"strconv"
)

// DefaultCores is how many cores a worker of an nsfd pool runs its Go code
// on when Server.Cores (or UseCores's n) is 0 and the environment sets no
// GOMAXPROCS: one.
//
// A pool runs about one worker per core. A Go runtime left to itself
// schedules on every CPU of the host, so n such workers on n cores run n²
// scheduler threads, whose idle ones spin for work and are woken on every
// connection, all competing for the same cores: measured on 2 cores (issue
// 18), 2 examples/http workers each on both cores spent 25–55% more CPU per
// request than one plain net/http process and served 0.89× its requests
// with a connection per request, 0.80× on keep-alive connections; on one
// core each, 1.01× and 0.94×. One worker that should use several cores says
// so: GOMAXPROCS in the daemon's [env], or Server.Cores.
const DefaultCores = 1

// UseCores sets how many cores the worker's Go code runs on at once
// (runtime.GOMAXPROCS) and returns the number in effect. n > 0 sets n; 0
// sets DefaultCores in a worker an nsfd master started (NSFD_DAEMON is set)
// and keeps the runtime's choice elsewhere (a program run by hand, or by
// systemd's socket activation, is no pool's worker); a negative n keeps the
// runtime's choice (every CPU, or the control group's CPU limit). A valid
// GOMAXPROCS environment variable wins over n: the daemon's [env]
// GOMAXPROCS = 4 gives each worker four.
func UseCores(n int) int {
	if v, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && v > 0 {
		return runtime.GOMAXPROCS(0) // the runtime applied it at start
	}
	if n == 0 && os.Getenv(EnvDaemon) != "" {
		n = DefaultCores
	}
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(n)
	return n
}
