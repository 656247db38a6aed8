package bench

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// onDemandIdle is the on-demand daemon's idle_timeout: short, so that a
// round waits little for its worker to be retired.
const onDemandIdle = 500 * time.Millisecond

// BenchmarkOnDemand measures the first connection to an on-demand daemon
// (min_servers = 0, idle_timeout): connect → first byte of the answer,
// while no worker runs, so the master must see the listener readable,
// start a worker, and the worker accept the connection the kernel kept in
// the backlog. Beside it, in the same master, the same echo worker always
// running (min_servers = 1): a new connection to an idle worker. The sides
// alternate for -bench.rounds rounds (at least 5); each cold round first
// waits (bounded) until idle_timeout has retired the on-demand worker.
func BenchmarkOnDemand(b *testing.B) {
	rounds := max(*flagRounds, 5)
	conf := func(extra string) string {
		return fmt.Sprintf("command = %s\nport = 127.0.0.1:0\ntype = notify\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n%s", bins.echo, extra)
	}
	var cold, warm []time.Duration
	for range b.N {
		m := startMaster(b, map[string]string{
			"lazy": conf(fmt.Sprintf("min_servers = 0\nidle_timeout = %s\n", onDemandIdle)),
			"warm": conf("min_servers = 1\n"),
		})
		lazy, always := m.addr("lazy"), m.addr("warm")
		m.waitWorkers("warm", 1)
		retired := 0 // "retiring every worker" lines seen: one per cold round
		for r := range rounds {
			sides := []string{"on demand", "always running"}
			if r%2 == 1 {
				slices.Reverse(sides)
			}
			for _, side := range sides {
				if side == "always running" {
					warm = append(warm, firstByte(b, always))
					continue
				}
				if !waitFor(30*time.Second, 5*time.Millisecond, func() bool { return len(m.workers("lazy")) == 0 }) {
					b.Fatalf("round %d: the on-demand worker was not retired\n%s", r, m.diagnostics())
				}
				cold = append(cold, firstByte(b, lazy))
				retired++
				// Retired and gone before the next measurement, which has
				// the machine to itself.
				if !waitFor(30*time.Second, 5*time.Millisecond, func() bool {
					return strings.Count(m.log(), "nsfd.lazy: no request for idle_timeout") >= retired && len(m.workers("lazy")) == 0
				}) {
					b.Fatalf("round %d: idle_timeout did not retire the on-demand worker\n%s", r, m.diagnostics())
				}
			}
		}
		if err := m.stop(60 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	c, w := median(cold), median(warm)
	b.ReportMetric(float64(c)/1e6, "cold-ms")
	b.ReportMetric(float64(w)/1e6, "warm-ms")
	b.Logf("connect → first byte, median of %d: on demand %v (%v–%v), always running %v (%v–%v), %.0f×",
		len(cold), c, slices.Min(cold), slices.Max(cold), w, slices.Min(warm), slices.Max(warm), float64(c)/float64(w))
	recordOnDemand(len(cold), cold, warm)
}

// firstByte connects to addr, sends one echo line and returns the time
// from the start of the connect to the first byte of the answer.
func firstByte(b *testing.B, addr string) time.Duration {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(echoLine); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		b.Fatalf("%s: %v", addr, err)
	}
	return time.Since(t0)
}

// recordOnDemand adds BenchmarkOnDemand's row and section to the report.
func recordOnDemand(n int, cold, warm []time.Duration) {
	c, w := median(cold), median(warm)
	addTarget(target{order: orderOnDemand,
		what: fmt.Sprintf("on-demand daemon (`min_servers = 0`): connect → first byte of the first connection, vs the same worker always running, median of %d", n),
		goal: "measured (no target)", met: true,
		measured: fmt.Sprintf("%s vs %s (%.0f×)", fmtDur(c), fmtDur(w), float64(c)/float64(w)),
		note:     "see § On-demand daemons"})
	addSection(orderOnDemand, "On-demand daemons", func(wr io.Writer) {
		fmt.Fprintf(wr, "One master, two daemons of the same `examples/echo` worker (`type = notify`): `lazy` with `min_servers = 0` and "+
			"`idle_timeout = %s`, `warm` with `min_servers = 1`. Each round, the sides alternating, one client connects, sends a line "+
			"and reads the first byte of the echo. For `lazy` no worker runs at that moment (the round waits until idle_timeout has "+
			"retired the last one): the connection waits in the kernel's backlog while the master, which watches the listening socket, "+
			"starts a worker (one fork and exec), which accepts it. For `warm` an idle worker accepts at once. "+
			"%d rounds.\n\n", onDemandIdle, n)
		fmt.Fprintf(wr, "| side | median | fastest | slowest |\n| --- | ---: | ---: | ---: |\n")
		fmt.Fprintf(wr, "| on demand (no worker yet) | %s | %s | %s |\n", fmtDur(c), fmtDur(slices.Min(cold)), fmtDur(slices.Max(cold)))
		fmt.Fprintf(wr, "| always running | %s | %s | %s |\n\n", fmtDur(w), fmtDur(slices.Min(warm)), fmtDur(slices.Max(warm)))
		fmt.Fprintln(wr, "The difference is the price of the first connection after an idle period, once: the next connections "+
			"find the worker running until idle_timeout passes without a request.")
	})
}
