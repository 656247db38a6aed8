package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nsfd/nsfd/worker"
)

// side is one way of running a workload's workers.
type side struct {
	name     string       // in the table
	metric   string       // prefix of its benchmark metrics: "nsfd", "direct", ...
	addr     string       // where the load goes
	master   int          // the master's pid under nsfd; 0 direct
	pids     func() []int // the workers' pids now
	recycled bool         // workers are replaced during a round: their CPU is not attributed
	rounds   []round
}

// round is one measurement of one side.
type round struct {
	load      loadResult
	masterCPU time.Duration
	workerCPU time.Duration   // -1: not attributed
	perWorker []time.Duration // each worker's run time in the round (threads' schedstat), with more than one worker
}

// workloadResult is one workload measured on every side; sides[0] is the
// direct baseline the others are compared with.
type workloadResult struct {
	name  string // sub-benchmark
	kind  workload
	label string // in the tables; kind's name when empty
	sides []*side
}

func (wl *workloadResult) title() string {
	if wl.label != "" {
		return wl.label
	}
	return wl.kind.String()
}

// runLoad drives addr with the benchmark's own client, or with wrk for
// httpWrk.
func runLoad(ctx context.Context, w workload, addr string, clients int, d time.Duration) loadResult {
	if w == httpWrk {
		return runWrk(ctx, addr, clients, d)
	}
	return generateLoad(ctx, w, addr, clients, d)
}

// daemonConf is a daemon pinned at n workers: min_servers = max_servers = n,
// and spare settings that never ask for more or fewer.
func daemonConf(command string, n, maxRequests int) string {
	return fmt.Sprintf("command = %s\nport = 127.0.0.1:0\ntype = notify\n"+
		"min_servers = %d\nmax_servers = %d\nmin_spare_servers = 0\nmax_spare_servers = %d\n"+
		"max_requests = %d\n", command, n, n, n-1, maxRequests)
}

var dataPathResults = map[string]*workloadResult{}

// BenchmarkDataPath compares requests per second of the same worker
// binaries under nsfd and started directly, in one run: see the package
// documentation.
func BenchmarkDataPath(b *testing.B) {
	n := *flagWorkers
	clients := *flagClients
	if clients <= 0 {
		clients = n
	}
	if n < 1 || *flagRounds < 1 || *flagDuration <= 0 {
		b.Fatal("-bench.workers, -bench.rounds and -bench.duration must be positive")
	}
	daemons := map[string]string{
		"echo":        daemonConf(bins.echo, n, 0),
		"http":        daemonConf(bins.ht, n, 0),
		"httprecycle": daemonConf(bins.ht, n, 1000), // nsfd's default max_requests
		// One worker per core at the default concurrency, as docs/protocol.md
		// recommends: what is held against one plain net/http process.
		"httpcores": daemonConf(bins.ht, runtime.NumCPU(), 0),
		// One worker on every core, as a Go user may choose instead: the Go
		// runtime spreads the connections over the cores.
		"httpall": daemonConf(bins.ht, 1, 0) + fmt.Sprintf("\n[env]\nGOMAXPROCS = %d\n", runtime.NumCPU()),
	}
	var notes []string
	m := startMaster(b, daemons)
	addrs := map[string]string{}
	startPids := map[string][]int{}
	for d := range daemons {
		addrs[d] = m.addr(d)
		want := n
		switch d {
		case "httpcores":
			want = runtime.NumCPU()
		case "httpall":
			want = 1
		}
		m.waitWorkers(d, want)
		startPids[d] = m.workers(d)
	}
	echoDirect := startDirect(b, n, bins.echo)
	echoDirect2 := startDirect(b, n, bins.echo)
	httpDirect := startDirect(b, n, bins.ht)
	// The same direct groups with a load board: what balancing costs or
	// gains without a master.
	echoBoard := startDirectBoard(b, n, bins.echo)
	httpBoard := startDirectBoard(b, n, bins.ht)
	// What a Go user runs instead: one net/http process on every core.
	plainHTTP := startDirect(b, 1, buildBenchCommand(b, "plainhttp"))
	notes = append(notes, fmt.Sprintf("\"nsfd, one worker per core\": an http daemon of %d workers (min_servers = max_servers = CPUs) at "+
		"examples/http's default concurrency of %d connections each and its default of one core each (GOMAXPROCS 1, worker.DefaultCores), as docs/protocol.md recommends; \"nsfd, one worker on every core\": one such worker with GOMAXPROCS = CPUs in its [env]; \"plain net/http, one process\": "+
		"bench/plainhttp, the same handler in one net/http process with no worker library, on a socket bound the same way",
		runtime.NumCPU(), worker.DefaultConcurrency))

	nsfdSide := func(name, metric, daemon string, recycled bool) *side {
		return &side{name: name, metric: metric, addr: addrs[daemon], master: m.pid(), recycled: recycled,
			pids: func() []int { return m.workers(daemon) }}
	}
	directSide := func(name, metric string, g *directGroup) *side {
		return &side{name: name, metric: metric, addr: g.addr, pids: g.pids}
	}
	workloads := []*workloadResult{
		{name: "echo", kind: echoKeepAlive, sides: []*side{
			directSide("direct", "direct", echoDirect),
			nsfdSide("nsfd", "nsfd", "echo", false),
			// The same as the baseline: how far apart two identical setups
			// measure on this machine, in this run.
			directSide("direct, 2nd copy (A/A)", "direct2", echoDirect2),
			directSide("direct, with a load board", "direct-board", echoBoard),
		}},
		{name: "echo-connect", kind: echoConnect, sides: []*side{
			directSide("direct", "direct", echoDirect),
			nsfdSide("nsfd", "nsfd", "echo", false),
		}},
		{name: "http", kind: httpKeepAlive, sides: []*side{
			directSide("direct", "direct", httpDirect),
			nsfdSide("nsfd", "nsfd", "http", false),
			directSide("direct, with a load board", "direct-board", httpBoard),
			nsfdSide("nsfd, one worker per core", "nsfd-cores", "httpcores", false),
			nsfdSide("nsfd, one worker on every core", "nsfd-all", "httpall", false),
			directSide("plain net/http, one process", "plain", plainHTTP),
		}},
		{name: "http-connect", kind: httpConnect, sides: []*side{
			directSide("direct", "direct", httpDirect),
			nsfdSide("nsfd", "nsfd", "http", false),
			nsfdSide("nsfd max_requests=1000", "recycle", "httprecycle", true),
			nsfdSide("nsfd, one worker per core", "nsfd-cores", "httpcores", false),
			nsfdSide("nsfd, one worker on every core", "nsfd-all", "httpall", false),
			directSide("plain net/http, one process", "plain", plainHTTP),
		}},
	}
	if v := wrkVersion(); v != "" {
		addMachineNote("load generator for the wrk rows: " + v + " (Debian's package), one thread")
		workloads = append(workloads, &workloadResult{name: "http-wrk", kind: httpWrk, label: "http keep-alive, driven by wrk",
			sides: []*side{directSide("direct", "direct", httpDirect), nsfdSide("nsfd", "nsfd", "http", false)}})
	} else {
		notes = append(notes, "wrk is not installed: the http keep-alive workload was driven by the benchmark's own client only")
	}

	var measured []*workloadResult
	for _, wl := range workloads {
		b.Run(wl.name, func(b *testing.B) {
			if prev, ok := dataPathResults[wl.name]; ok {
				reportWorkload(b, prev) // a longer -benchtime: the measurement is not repeated
				return
			}
			measureWorkload(b, wl, clients)
			dataPathResults[wl.name] = wl
			measured = append(measured, wl)
			reportWorkload(b, wl)
		})
	}
	if len(measured) == 0 {
		return
	}
	for d, before := range startPids {
		if d == "httprecycle" {
			continue
		}
		if after := m.workers(d); !slices.Equal(sorted(before), sorted(after)) {
			notes = append(notes, fmt.Sprintf("daemon %s: workers changed during the run (%v -> %v)", d, before, after))
		}
	}
	for _, wl := range measured {
		for _, s := range wl.sides {
			for _, r := range s.rounds {
				if r.load.Errors > 0 {
					notes = append(notes, fmt.Sprintf("%s, %s: %d errors in %d requests (first: %s)",
						wl.name, s.name, summarize(s).errors, summarize(s).requests, r.load.FirstErr))
					break
				}
			}
		}
	}
	log := m.log()
	if k := countLines(log, "stderr:", "notify"); k > 0 {
		notes = append(notes, fmt.Sprintf("%d notify errors in the central log (a worker gave up on a full notify queue after 500ms)", k))
	} else {
		notes = append(notes, "no notify errors in the central log (no worker gave up on a full notify queue)")
	}
	if k := strings.Count(log, "replacing it"); k > 0 {
		notes = append(notes, fmt.Sprintf("%d workers replaced by the master (max_requests, crashes)", k))
	}
	printDataPath(os.Stdout, n, clients, measured, notes)
	recordDataPath(n, clients, measured, notes)
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// countLines counts the lines of text holding every one of subs.
func countLines(text string, subs ...string) int {
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// measureWorkload warms every side up, then runs the rounds, rotating the
// order of the sides each round so that none is always first.
func measureWorkload(b *testing.B, wl *workloadResult, clients int) {
	ctx := context.Background()
	for _, s := range wl.sides {
		if *flagWarmup > 0 {
			if r := runLoad(ctx, wl.kind, s.addr, clients, *flagWarmup); r.Requests == 0 {
				b.Fatalf("%s %s: no request answered during the warm-up: %+v", wl.name, s.name, r)
			}
		}
	}
	for r := range *flagRounds {
		for i := range wl.sides {
			s := wl.sides[(i+r)%len(wl.sides)]
			s.rounds = append(s.rounds, measureRound(ctx, wl.kind, s, clients))
		}
	}
}

func measureRound(ctx context.Context, w workload, s *side, clients int) round {
	pids := s.pids()
	w0 := totalCPU(pids)
	var m0, t0 time.Duration
	if s.master != 0 {
		m0, t0 = procCPU(s.master), threadsRunTime(s.master)
	}
	var each []time.Duration
	if len(pids) > 1 {
		for _, pid := range pids {
			each = append(each, threadsRunTime(pid))
		}
	}
	load := runLoad(ctx, w, s.addr, clients, *flagDuration)
	rd := round{load: load, workerCPU: -1}
	if !s.recycled {
		rd.workerCPU = totalCPU(pids) - w0
		for i, pid := range pids[:len(each)] {
			rd.perWorker = append(rd.perWorker, threadsRunTime(pid)-each[i])
		}
	}
	if s.master != 0 {
		rd.masterCPU = max(procCPU(s.master)-m0, threadsRunTime(s.master)-t0)
	}
	return rd
}

// threadsRunTime returns the run time of a process's threads, summed from
// /proc/PID/task/*/schedstat (nanoseconds), or 0. Finer than the 10 ms ticks
// of procCPU, but a thread that exits takes its time with it: a difference
// of two readings is at most the CPU used between them, and measureRound
// keeps the larger of it and the ticks' difference.
func threadsRunTime(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var d time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			d += time.Duration(ns)
		}
	}
	return d
}

// sideSummary condenses a side's rounds.
type sideSummary struct {
	median, best float64 // req/s
	p50, p99     time.Duration
	requests     int
	errors       int
	redials      int
	masterShare  float64       // master CPU seconds per second of load
	cpuPerReq    time.Duration // workers' and master's CPU per request; 0: not attributed
}

func summarize(s *side) sideSummary {
	var sum sideSummary
	var rps []float64
	var p50, p99 []time.Duration
	var elapsed, mcpu, wcpu time.Duration
	attributed := true
	for _, r := range s.rounds {
		rps = append(rps, r.load.RPS())
		p50 = append(p50, r.load.P50)
		p99 = append(p99, r.load.P99)
		sum.requests += r.load.Requests
		sum.errors += r.load.Errors
		sum.redials += r.load.Redials
		elapsed += r.load.Elapsed
		mcpu += r.masterCPU
		attributed = attributed && r.workerCPU >= 0
		wcpu += r.workerCPU
	}
	if len(rps) == 0 {
		return sum
	}
	sum.median, sum.best = median(rps), slices.Max(rps)
	sum.p50, sum.p99 = median(p50), median(p99)
	if elapsed > 0 {
		sum.masterShare = mcpu.Seconds() / elapsed.Seconds()
	}
	if attributed && sum.requests > 0 {
		sum.cpuPerReq = (wcpu + mcpu) / time.Duration(sum.requests)
	}
	return sum
}

func median[T float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedRatios returns, for each round, s's req/s over that of the baseline
// measured in the same round, seconds apart.
func pairedRatios(s, base *side) []float64 {
	var out []float64
	for i := range min(len(s.rounds), len(base.rounds)) {
		if d := base.rounds[i].load.RPS(); d > 0 {
			out = append(out, s.rounds[i].load.RPS()/d)
		}
	}
	return out
}

func reportWorkload(b *testing.B, wl *workloadResult) {
	b.ReportMetric(0, "ns/op") // one run of minutes: the time per op says nothing
	for i, s := range wl.sides {
		sum := summarize(s)
		b.ReportMetric(sum.median, s.metric+"-req/s")
		b.ReportMetric(float64(sum.p99.Microseconds()), s.metric+"-p99-µs")
		if pr := pairedRatios(s, wl.sides[0]); i > 0 && len(pr) > 0 {
			b.ReportMetric(median(pr), s.metric+"/direct")
		}
	}
}

func printDataPath(w io.Writer, n, clients int, wls []*workloadResult, notes []string) {
	fmt.Fprintf(w, "\nnsfd data path: %d workers per side, %d closed-loop clients, %d rounds × %v per side, %d CPUs, load generator in the benchmark process\n",
		n, clients, *flagRounds, *flagDuration, runtime.NumCPU())
	fmt.Fprintln(w, "req/s, p50, p99: median of the rounds. vs direct: median over the rounds of req/s ÷ the direct req/s of the same round (range: lowest–highest round).")
	fmt.Fprintln(w, "best vs best: best round ÷ best direct round. CPU/req: CPU time of the workers and the master per request.")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tside\treq/s\tbest\tp50\tp99\terrors\tredials\tmaster CPU\tCPU/req\tvs direct\trange\tbest vs best\t")
	for _, wl := range wls {
		base := summarize(wl.sides[0])
		for i, s := range wl.sides {
			sum := summarize(s)
			label := ""
			if i == 0 {
				label = wl.title()
			}
			mcpu, cpu, ratio, spread, best := "-", "-", "-", "-", "-"
			if s.master != 0 {
				mcpu = fmt.Sprintf("%.1f%%", 100*sum.masterShare)
			}
			if sum.cpuPerReq > 0 {
				cpu = fmt.Sprintf("%.1fµs", float64(sum.cpuPerReq.Nanoseconds())/1e3)
			}
			if pr := pairedRatios(s, wl.sides[0]); i > 0 && len(pr) > 0 {
				ratio = fmt.Sprintf("%.3f", median(pr))
				spread = fmt.Sprintf("%.2f–%.2f", slices.Min(pr), slices.Max(pr))
				best = fmt.Sprintf("%.3f", sum.best/base.best)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", label, s.name, sum.median, sum.best,
				roundDur(sum.p50), roundDur(sum.p99), sum.errors, sum.redials, mcpu, cpu, ratio, spread, best)
		}
	}
	tw.Flush()
	for _, note := range notes {
		fmt.Fprintln(w, "  "+note)
	}
	fmt.Fprintln(w)
}

func roundDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d >= time.Microsecond:
		return d.Round(time.Microsecond).String()
	}
	return d.String()
}

// buildBenchCommand builds the command bench/NAME into a temporary
// directory and returns its path.
func buildBenchCommand(tb testing.TB, name string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build bench/%s: %v\n%s", name, err, out)
	}
	return bin
}
