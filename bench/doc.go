// Package bench measures what nsfd costs: the throughput of real workers
// under nsfd against the same worker binaries started without it, and the
// master's memory and CPU with 1000 idle workers. It holds benchmarks only;
// docs/benchmarks.md has the figures and how to read them.
//
//	make bench
//	go test -run '^$' -bench . -benchtime 1x ./bench/
//	go test -run '^$' -bench DataPath/echo -benchtime 1x ./bench/ -args -bench.rounds 20
//
// The benchmarks build nsfd and the example workers (without -race) into a
// temporary directory once, in TestMain, and only when -bench is given
// (-bench.bin DIR uses binaries built already): a plain `go test ./...`
// runs the quick tests of the load generator and nothing else. The -bench.*
// flags (after -args) set the rounds, their length, the number of workers
// and clients, and the size of the idle fleet.
//
// BenchmarkDataPath starts one `nsfd run` whose etc/ holds an echo daemon
// (examples/echo) and two HTTP daemons (examples/http; max_requests = 0, and
// nsfd's default of 1000), each pinned at -bench.workers workers (4) on
// 127.0.0.1:0. Beside it, the benchmark binds the same kind of socket itself
// (prefork.Bind: blocking, backlog 1024, as nsfd binds a daemon's port) and
// starts as many copies of the same binaries, with the same arguments, on
// it with LISTEN_FDS=1 and neither LISTEN_PID nor NOTIFY_SOCKET: "direct",
// the workers without nsfd. A closed-loop load generator (load_test.go: one
// goroutine per client, each waiting for its reply before sending again,
// raw sockets and a minimal HTTP/1.1 client) drives every side over loopback
// with the same number of clients, one per worker by default, since the
// example workers serve one connection at a time. Workloads:
//
//   - echo keep-alive: a line and its echo, many per connection. Each
//     worker reports BUSY once per connection: the data path alone.
//   - echo connect-per-request: connect, line, echo, close. Every request
//     is an accept and a BUSY=1/BUSY=0 pair to the master.
//   - http keep-alive and http connect-per-request: the same with GET /.
//     The connect-per-request run also has the max_requests = 1000 daemon,
//     whose workers are replaced every 1000 connections.
//
// Each workload runs -bench.rounds rounds of -bench.duration per side,
// rotating the order of the sides each round; the figures are medians over
// the rounds, and the ratio to direct is the median of the ratios of
// rounds measured side by side. The echo keep-alive workload has a second
// direct group as an A/A control: the spread between two identical setups
// is the resolution of the measurement on the machine it ran on.
//
// BenchmarkMasterOverhead starts `nsfd run` with 10 daemons of 100 idle
// workers each (`sleep`, type = simple), waits until all 1000 run, and
// reads the master's VmRSS, threads and CPU seconds over an idle window
// from /proc; a master with one worker first gives the baseline.
package bench
