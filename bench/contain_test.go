package bench

import (
	"flag"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"testing"
	"time"
)

var flagContainN = flag.Int("bench.contain-workers", 200, "workers started per side by the containment benchmark")

// BenchmarkContainment measures what containment costs per spawn: the same
// daemon of N `sleep` workers, started by a master with its control groups
// (one group per daemon and per worker, joined by the forked child before its exec) and by one
// without (NSFD_CGROUPS=off: subreaper and process groups only), the sides
// alternating for -bench.rounds rounds. Per side: the time from the exec of
// the master until all N run, and the CPU time of the master and the
// workers (the forked child's work before its exec is counted in the worker), divided by
// N. The ratio contained ÷ uncontained is the cost.
func BenchmarkContainment(b *testing.B) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skip("no sleep")
	}
	n := *flagContainN
	rounds := max(*flagRounds/2, 3)
	type sample struct{ wall, cpu time.Duration }
	results := map[string][]sample{}
	for range b.N {
		for r := range rounds {
			for _, side := range []string{"contained", "uncontained"} {
				if r%2 == 1 { // alternate which side goes first
					side = map[string]string{"contained": "uncontained", "uncontained": "contained"}[side]
				}
				b.Run(side, func(b *testing.B) {
					if side == "uncontained" {
						b.Setenv("NSFD_CGROUPS", "off")
					}
					m := startMaster(b, map[string]string{"fleet": nsfdConf(sleep, n)})
					ok := waitFor(60*time.Second, time.Millisecond, func() bool { return len(children(m.pid())) >= n })
					wall := time.Since(m.started())
					if !ok {
						b.Fatalf("%d workers not running\n%s", n, m.diagnostics())
					}
					cpu := time.Duration(0)
					if p, err := readProc(m.pid()); err == nil {
						cpu += p.cpu
					}
					for _, p := range children(m.pid()) {
						cpu += p.cpu
					}
					results[side] = append(results[side], sample{wall, cpu})
					if err := m.stop(60 * time.Second); err != nil {
						b.Fatal(err)
					}
				})
			}
		}
	}
	median := func(side string, f func(sample) time.Duration) time.Duration {
		var v []time.Duration
		for _, s := range results[side] {
			v = append(v, f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	wall := func(s sample) time.Duration { return s.wall }
	cpu := func(s sample) time.Duration { return s.cpu }
	cw, uw := median("contained", wall), median("uncontained", wall)
	cc, uc := median("contained", cpu), median("uncontained", cpu)
	b.ReportMetric(float64(cw)/float64(uw), "wall-ratio")
	b.ReportMetric(float64(cc)/float64(uc), "cpu-ratio")
	recordContainment(n, rounds, cw, uw, cc, uc)
	b.Logf("start → %d workers running, median of %d rounds: contained %v (%v a spawn, CPU %v a spawn), uncontained %v (%v a spawn, CPU %v a spawn); ratio wall %.2f, CPU %.2f",
		n, rounds, cw, cw/time.Duration(n), cc/time.Duration(n), uw, uw/time.Duration(n), uc/time.Duration(n),
		float64(cw)/float64(uw), float64(cc)/float64(uc))
}

// recordContainment adds BenchmarkContainment's row and section to the
// report. Containment has no target of its own: the row shows its cost.
func recordContainment(n, rounds int, cw, uw, cc, uc time.Duration) {
	per := func(d time.Duration) string { return fmtDur(d / time.Duration(n)) }
	addTarget(target{order: orderContain, what: fmt.Sprintf("containment per spawn: start → %d `sleep` workers running, contained ÷ uncontained, median of %d", n, rounds),
		goal: "measured (no target)", met: true,
		measured: fmt.Sprintf("wall %.2f× (%s vs %s a spawn); CPU %.2f× (%s vs %s a spawn)",
			float64(cw)/float64(uw), per(cw), per(uw), float64(cc)/float64(uc), per(cc), per(uc)),
		note: "see § Containment"})
	addSection(orderContain, "Containment", func(w io.Writer) {
		fmt.Fprintf(w, "One daemon of %d `sleep` workers (`type = simple`), started by a master with its control groups "+
			"(a group per daemon and one per worker, made by the master: the child is cloned into the worker's cgroup2 group "+
			"and, on this hybrid host, joins the worker's v1 memory group and the daemon's v1 pids group before the exec) and by one with "+
			"`NSFD_CGROUPS=off` (subreaper and process groups only), %d rounds each, the sides alternating. "+
			"Wall: from the exec of the master until all run; CPU: the master's and the workers' (the forked child's "+
			"work before its exec is counted in the worker).\n\n", n, rounds)
		fmt.Fprintf(w, "| side | start → all running | a spawn | CPU a spawn |\n| --- | ---: | ---: | ---: |\n")
		fmt.Fprintf(w, "| contained | %s | %s | %s |\n", fmtDur(cw), per(cw), per(cc))
		fmt.Fprintf(w, "| uncontained | %s | %s | %s |\n\n", fmtDur(uw), per(uw), per(uc))
	})
}
