// Package bench measures nsfd against what users run today and against no
// supervisor at all, every comparison side by side in one run, and writes
// the figures into docs/benchmarks.md. It holds benchmarks only.
//
//	make bench                 # bench/run: installs the peers, ~15 min, writes docs/benchmarks.md
//	make bench-quick           # bench/run --quick: ~2 min, writes var/bench/benchmarks.md
//	go test -run '^$' -bench PerlEcho -benchtime 1x ./bench/ -args -bench.report /tmp/b.md
//
// bench/run installs the peers from Debian's packages when they are missing
// (supervisor, libnet-server-perl, wrk) and runs every benchmark in one
// `go test -bench` process. TestMain builds nsfd and the example workers
// (without -race) once, only when -bench is given, so a plain
// `go test ./...` runs the quick checks of the load generator, the report
// and the Perl worker and nothing else. Each benchmark registers its
// section, its targets and its charts with the report (report_test.go);
// with -bench.report FILE, TestMain writes them as Markdown and PNG charts
// (gonum plot) once all have run. -bench.quick shrinks fleets and rounds.
//
// The benchmarks, in the order they run:
//
//   - BenchmarkDataPath: the same worker binaries (examples/echo,
//     examples/http) under `nsfd run` and "direct", N copies on a socket the
//     benchmark binds itself with LISTEN_FDS=1 and no NOTIFY_SOCKET; a
//     closed-loop load generator (load_test.go) and wrk drive both over
//     loopback, keep-alive and connect-per-request, rounds alternating the
//     sides; an A/A control (two identical direct groups) shows the
//     resolution of the machine.
//   - BenchmarkLogShipping: 8 workers (bench/logspam) writing lines as fast
//     as they can through nsfd's central log, against the same binaries
//     writing files of their own; every (worker, sequence) pair is checked.
//   - BenchmarkPerlEcho: one Perl echo handler (bench/perl/EchoHandler.pm)
//     under Net::Server::PreFork, the seed's own engine, and as an nsfd
//     worker (bench/perl/nsfd-echo.pl, fd 3 from LISTEN_FDS), with the Go
//     echo worker, the Perl worker without any supervisor and the floor (a
//     C epoll loop per core, bench/echofloor/echofloor.c, built with gcc at
//     run time) beside them, at 1, 16 and 64 keep-alive connections, with
//     the same pool options.
//   - BenchmarkSupervisord: supervisord 4.2 against nsfd on the same fleets
//     of `sleep` processes: bring-up of 100 and 1000, SIGKILL to
//     replacement running (on 100, and on 1000 for nsfd), master RSS and
//     CPU with 1000 idle, and a new configuration file to its program
//     running; beside the start of 1000, in the same rounds, the
//     posix_spawn floor (bench/spawnfloor/spawnfloor.c, built with gcc at
//     run time: the same `sleep` processes and nothing else) and the CPU
//     each side spends per spawned process (spawnfloor_test.go).
//   - BenchmarkMasterOverhead: the PreFork issue's targets for the master
//     with 1000 idle workers across 10 daemons (RSS, idle CPU), read from
//     the fleet BenchmarkSupervisord started.
//   - BenchmarkFleet: 10 masters, each in a network namespace of its own
//     (internal/fleettest; root), with 50 daemons each on one PostgreSQL
//     registry: resolve latency with and without the client's cache,
//     fail-over when a node is killed or cut off, and the registry's
//     writes and PostgreSQL's CPU per node, extrapolated to 1,000 nodes.
//     Alone: bench/run -- -test.bench=BenchmarkFleet (with --out FILE).
//
// The machine these run on is shared: absolute figures move by tens of
// percent from one minute to the next, so every target is set on a ratio of
// two systems measured in the same run, rounds interleaved where the
// measurement allows it.
package bench
