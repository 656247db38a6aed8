package bench

import (
	"fmt"
	"io"
	"time"
)

// recordFleet adds BenchmarkFleet's section and targets to the report.
func recordFleet(r *fleetResult) {
	beats := 3 * r.heartbeat
	for _, fo := range []failover{r.kill, r.partition} {
		addTarget(target{order: orderFleet, what: "fleet: " + fo.what + ", node out of resolve",
			goal: fmt.Sprintf("≤ 3 heartbeats (%s)", fmtDur(beats)), measured: fmtDur(fo.outOfResolv), met: fo.outOfResolv <= beats+time.Second/2,
			note: "see § A fleet on one PostgreSQL"})
		addTarget(target{order: orderFleet, what: "fleet: " + fo.what + ", calls failed but those in flight on it",
			goal: "0", measured: fmt.Sprintf("%d (%d in flight failed, the last %s after; %d calls)", fo.later, fo.failed-fo.later,
				fmtDur(fo.lastFailure), fo.calls),
			met: fo.later == 0, note: "calls failed after the node was known gone"})
	}
	addSection(orderFleet, "A fleet on one PostgreSQL", func(w io.Writer) { writeFleet(w, r) })
}

func writeFleet(w io.Writer, r *fleetResult) {
	beats := 3 * r.heartbeat
	fmt.Fprintf(w, "%d nodes, each a network namespace with its own address on one bridge and one `nsfd run` "+
		"(internal/fleettest), with %d daemons each: `kv` (2 workers) and %d of one `sleep` worker; PostgreSQL 15 in a "+
		"namespace of its own; `[registry] heartbeat = %s`. All %d daemons registered %s after the first master "+
		"started. The clients run in the test process: the registry through PostgreSQL's UNIX socket, the daemons "+
		"through a namespace of the LAN.\n\n", r.nodes, r.perNode, r.perNode-1, r.heartbeat, r.nodes*r.perNode, fmtDur(r.startup))
	fmt.Fprintln(w, "| resolve `kv` (one endpoint on each node) | median | p99 |")
	fmt.Fprintln(w, "| --- | ---: | ---: |")
	fmt.Fprintf(w, "| uncached: the registry's query | %s | %s |\n", fmtDur(r.uncached), fmtDur(r.uncachedP99))
	fmt.Fprintf(w, "| cached: `client.Resolve`, its watch up (%d calls) | %d ns | %d ns |\n\n", r.cachedN,
		r.cached.Nanoseconds(), r.cachedP99.Nanoseconds())
	fmt.Fprintln(w, "A client caches an answer until the registry announces a change of its name (LISTEN/NOTIFY), or "+
		"for at most MaxAge (3 heartbeats); so a fleet that does not change costs its clients no query.")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "**Fail-over**, 4 callers calling `kv info` in a loop through one client with its defaults "+
		"(DialTimeout and AckTimeout 2 s, DownFor 5 s):\n\n")
	fmt.Fprintln(w, "| | out of resolve | calls after | failed | last failure after | slowest call begun after |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, fo := range []failover{r.kill, r.partition} {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s |\n", fo.what, fmtDur(fo.outOfResolv), fo.calls, fo.failed,
			fmtDur(fo.lastFailure), fmtDur(fo.worst))
	}
	fmt.Fprintf(w, "\nA killed node refuses connections at once: the calls its workers were serving fail, the next "+
		"ones go elsewhere. A cut-off node answers nothing: the calls sent on its connections fail after AckTimeout "+
		"(TCP_USER_TIMEOUT), which also marks it down and drops its idle connections; a dial to it after DownFor "+
		"costs its call DialTimeout before the call moves on (the slowest call). Out of resolve is bounded by 3 "+
		"heartbeats (%s). The healed node was back in resolve %s after its link came up.\n\n", fmtDur(beats), fmtDur(r.healBack))
	fmt.Fprintf(w, "**What the registry costs PostgreSQL**, the fleet idle, over %s:\n\n", fmtDur(r.window))
	fmt.Fprintln(w, "| | measured, all nodes | per node | 1,000 nodes (× per node) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	secs := r.window.Seconds()
	fmt.Fprintf(w, "| transactions / s | %.1f | %.2f | %.0f |\n", float64(r.commits)/secs, r.writesPerNode, 1000*r.writesPerNode)
	fmt.Fprintf(w, "| rows written / s | %.1f | %.2f | %.0f |\n", float64(r.rows)/secs, r.rowsPerNode, 1000*r.rowsPerNode)
	fmt.Fprintf(w, "| PostgreSQL CPU (postmaster and backends) | %.1f%% of a CPU | %.2f%% | %.2f CPUs |\n",
		100*r.pgCPU.Seconds()/secs, 100*r.cpuPerNodeShare, 1000*r.cpuPerNodeShare)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Each master writes at each heartbeat one UPDATE of its daemons' heartbeats and the worker rows "+
		"of the daemons whose workers or counters changed (none, idle), and every 10th beat a purge of other nodes' "+
		"stale rows; spawns and exits in between. The extrapolation is linear in nodes and assumes PostgreSQL's cost per write stays what it "+
		"is at %d nodes; it scales with 1/heartbeat. `/proc` counts CPU in 10 ms ticks.\n", r.nodes)
}
