package worker

import (
	"os"
	"runtime"
)

// DefaultCores is how many cores a worker's Go code runs on when
// Server.Cores (or UseCores's n) is 0 and the environment sets no
// GOMAXPROCS: one.
//
// A pool runs about one worker per core. A Go runtime left to itself
// schedules on every CPU of the host, so n such workers on n cores keep n²
// scheduler slots, whose idle threads spin for work, steal it from each
// other and wake one another on every connection: measured on 2 cores
// (issue 18), 2 examples/http workers each on both cores spent 25–55% more
// CPU per request than one plain net/http process and served 0.89× its
// requests with a connection per request, 0.80× on keep-alive connections;
// on one core each, 1.01× and 0.94×. One worker that should use several
// cores says so: GOMAXPROCS in the daemon's [env], or Server.Cores.
const DefaultCores = 1

// UseCores sets how many cores the worker's Go code runs on at once
// (runtime.GOMAXPROCS) to n, or DefaultCores if n is 0, and returns the
// number in effect. A GOMAXPROCS environment variable wins (the daemon's
// [env] GOMAXPROCS = 4 gives each worker four), and a negative n keeps the
// runtime's choice (every CPU, or the control group's CPU limit).
func UseCores(n int) int {
	if n < 0 || os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	if n == 0 {
		n = DefaultCores
	}
	runtime.GOMAXPROCS(n)
	return n
}
