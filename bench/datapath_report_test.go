package bench

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// targetDataPath is the PreFork issue's target: throughput under nsfd at
// least this share of the same workers without it.
const targetDataPath = 0.97

// targetHTTPConnect is issue 18's sharper target for http
// connect-per-request, the workload on which every request is a status
// report to the master.
const targetHTTPConnect = 0.98

// Issue 18's target for the master on the notify path: at most this share
// of a CPU at this rate of connections (http connect-per-request).
const (
	targetNotifyShare = 0.02
	targetNotifyRate  = 7000 // connections/s
)

// dataPathTarget is the target of nsfd ÷ no supervisor on workload wl.
func dataPathTarget(wl *workloadResult) float64 {
	if wl.kind == httpConnect {
		return targetHTTPConnect
	}
	return targetDataPath
}

// targetPlainHTTP is issue 18's target: examples/http under nsfd at least
// this share of one plain net/http process.
const targetPlainHTTP = 0.95

// recordDataPath adds the data-path section, its targets and its chart to
// the report.
func recordDataPath(n, clients int, wls []*workloadResult, notes []string) {
	var aa float64 // the A/A control's ratio: what "no difference" reads as in this run
	for _, wl := range wls {
		for i, s := range wl.sides {
			if i > 0 && s.metric == "direct2" {
				aa = median(pairedRatios(s, wl.sides[0]))
			}
		}
	}
	chart := barChart{order: orderDataPath, file: "bench-datapath.png",
		title: "Data path: requests/s, same workers with and without nsfd", ylabel: "requests/s (median of rounds)",
		series: []barSeries{{name: "nsfd"}, {name: "direct (no supervisor)"}}}
	for _, wl := range wls {
		base := summarize(wl.sides[0])
		for i, s := range wl.sides {
			if i == 0 || s.metric != "nsfd" {
				continue
			}
			sum := summarize(s)
			chart.groups = append(chart.groups, strings.ReplaceAll(wl.title(), ", driven by", " by"))
			chart.series[0].values = append(chart.series[0].values, sum.median)
			chart.series[1].values = append(chart.series[1].values, base.median)
			pr := pairedRatios(s, wl.sides[0])
			if len(pr) == 0 {
				continue
			}
			r, goal := median(pr), dataPathTarget(wl)
			t := target{order: orderDataPath, what: "data path, " + wl.title() + ": nsfd ÷ no supervisor",
				goal: fmt.Sprintf("≥ %.2f", goal), met: r >= goal,
				measured: fmt.Sprintf("%.3f (%.0f vs %.0f req/s; rounds %.2f–%.2f)", r, sum.median, base.median, slices.Min(pr), slices.Max(pr))}
			if aa > 0 {
				t.measured += fmt.Sprintf("; A/A control %.3f", aa)
			}
			if !t.met {
				t.note = fmt.Sprintf("%.1f%% fewer requests than the same workers without nsfd, %.1f points under the target", 100*(1-r), 100*(goal-r))
				if sum.masterShare > 0 {
					t.note += fmt.Sprintf("; the master used %.1f%% of a CPU meanwhile, on %d CPUs shared with the load generator", 100*sum.masterShare, runtime.NumCPU())
				}
				if aa > 0 && r >= aa {
					t.note += "; within this run's A/A spread"
				}
				t.note += boardWhy(wl, s, clients)
				t.note += "; see § Data path"
			}
			addTarget(t)
			if wl.kind == httpConnect {
				recordNotifyCPU(wl.title(), s)
			}
		}
	}
	recordPlainHTTP(wls)
	if len(chart.groups) > 0 {
		addChart(chart)
	}
	addSection(orderDataPath, "Data path: nsfd vs no supervisor", func(w io.Writer) {
		fmt.Fprintf(w, "The master is never in the data path: connections go from the kernel's accept queue to the workers. "+
			"This measures what nsfd still costs a daemon: the same worker binaries (`examples/echo`, `examples/http`), "+
			"%d of them per side, under `nsfd run` (`min_servers = max_servers = %d`, `type = notify`, `max_requests = 0`, "+
			"a third daemon with nsfd's default `max_requests = 1000`) and **direct**: %d copies started by the benchmark "+
			"on a socket it binds itself as nsfd would, with `LISTEN_FDS=1` and no `NOTIFY_SOCKET`, so nothing to report to.\n\n",
			n, n, n)
		fmt.Fprintf(w, "Load: %d closed-loop clients on loopback (each waits for its reply before the next request), "+
			"%d rounds × %v per side after %v of warm-up, the order of the sides rotating each round, on %d CPUs shared "+
			"with the load generator. *keep-alive*: one connection per client, request after request; "+
			"*connect-per-request*: connect, one request, reply, close (`SO_LINGER 0`) — every request is an accept "+
			"and a status report from the worker to the master. The wrk row drives the same http daemons with `wrk -t1 -c%d`.\n\n",
			clients, *flagRounds, *flagDuration, *flagWarmup, runtime.NumCPU(), clients)
		fmt.Fprintln(w, "req/s, p50, p99: median over the rounds. **vs direct**: median over the rounds of req/s ÷ the direct "+
			"req/s of the same round (range: lowest–highest round). CPU/req: CPU time of the workers and the master "+
			"(utime+stime from `/proc`) per request; master CPU: share of one CPU the master used while the load ran (the larger of its utime+stime, in 10 ms ticks, "+
			"and its threads' run time from `/proc/PID/task/*/schedstat`). "+
			"The *A/A control* is a second, identical direct group: its ratio is what \"no difference\" reads as on this "+
			"machine in this run. *direct, with a load board*: a direct group given a board file of its own "+
			"(`NSFD_LOAD_BOARD`, docs/protocol.md), as nsfd gives a pool: what balancing the connections does without a master.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| workload | side | req/s | p50 | p99 | errors | master CPU | CPU/req | vs direct | range |")
		fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, wl := range wls {
			for i, s := range wl.sides {
				sum := summarize(s)
				label := ""
				if i == 0 {
					label = wl.title()
				}
				mcpu, cpu, ratio, spread := "–", "–", "", ""
				if s.master != 0 {
					mcpu = fmt.Sprintf("%.1f%%", 100*sum.masterShare)
				}
				if sum.cpuPerReq > 0 {
					cpu = fmt.Sprintf("%.1f µs", float64(sum.cpuPerReq.Nanoseconds())/1e3)
				}
				if pr := pairedRatios(s, wl.sides[0]); i > 0 && len(pr) > 0 {
					ratio = fmt.Sprintf("**%.3f**", median(pr))
					spread = fmt.Sprintf("%.2f–%.2f", slices.Min(pr), slices.Max(pr))
				}
				fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %d | %s | %s | %s | %s |\n", label, s.name, sum.median,
					roundDur(sum.p50), roundDur(sum.p99), sum.errors, mcpu, cpu, ratio, spread)
			}
		}
		fmt.Fprintln(w)
		for _, note := range notes {
			fmt.Fprintln(w, "- "+note)
		}
		fmt.Fprintln(w)
		fmt.Fprint(w, dataPathDiscussion)
	})
}

// boardWhy says how much of the difference between nsfd side s and the
// direct baseline of wl the load board accounts for, where wl has a direct
// side with a board of its own.
func boardWhy(wl *workloadResult, s *side, clients int) string {
	bs := wl.sideByMetric("direct-board")
	if bs == nil {
		return ""
	}
	withBoard, nsfdToBoard := pairedRatios(bs, wl.sides[0]), pairedRatios(s, bs)
	if len(withBoard) == 0 || len(nsfdToBoard) == 0 {
		return ""
	}
	bsum, base := summarize(bs), summarize(wl.sides[0])
	r := median(nsfdToBoard)
	why := fmt.Sprintf(". The same direct workers given a load board of their own measured %.3f of them (CPU/req %s against %s), "+
		"and nsfd %.3f of those", median(withBoard), fmtDur(bsum.cpuPerReq), fmtDur(base.cpuPerReq), r)
	if r >= dataPathTarget(wl) {
		why += fmt.Sprintf(": the difference is the board, which spreads the %d connections over the workers where without "+
			"it the first to wake takes most, on %d CPUs shared with the load generator, not the master", clients, runtime.NumCPU())
	}
	return why
}

// recordPlainHTTP adds the targets of examples/http under nsfd, one
// worker per core and one worker on every core, against a plain
// single-process net/http server, where a workload has them.
func recordPlainHTTP(wls []*workloadResult) {
	configs := []struct{ metric, what string }{
		{"nsfd-cores", "one worker per core"},
		{"nsfd-all", "one worker on every core"},
	}
	for _, wl := range wls {
		plain := wl.sideByMetric("plain")
		for _, cf := range configs {
			ns := wl.sideByMetric(cf.metric)
			if ns == nil || plain == nil {
				continue
			}
			pr := pairedRatios(ns, plain)
			if len(pr) == 0 {
				continue
			}
			r := median(pr)
			t := target{order: orderDataPath, what: "data path, " + wl.title() + ": examples/http under nsfd, " + cf.what + ", ÷ one plain net/http process",
				goal: fmt.Sprintf("≥ %.2f", targetPlainHTTP), met: r >= targetPlainHTTP,
				measured: fmt.Sprintf("%.3f (%.0f vs %.0f req/s; rounds %.2f–%.2f)", r, summarize(ns).median, summarize(plain).median, slices.Min(pr), slices.Max(pr))}
			if !t.met {
				t.note = fmt.Sprintf("%.1f%% fewer requests", 100*(1-r)) + plainHTTPWhy(ns, plain, wl.kind == httpConnect) + "; see § Data path"
			}
			addTarget(t)
		}
	}
}

// sideByMetric returns the side of wl measured as metric, or nil.
func (wl *workloadResult) sideByMetric(metric string) *side {
	for _, s := range wl.sides {
		if s.metric == metric {
			return s
		}
	}
	return nil
}

// busiestShare is the median over s's rounds of the busiest worker's share
// of the workers' run time, and the number of workers; 0, 0 without a
// per-worker account.
func busiestShare(s *side) (float64, int) {
	var shares []float64
	n := 0
	for _, r := range s.rounds {
		var total, top time.Duration
		for _, d := range r.perWorker {
			total += d
			top = max(top, d)
		}
		if total > 0 {
			shares = append(shares, top.Seconds()/total.Seconds())
			n = len(r.perWorker)
		}
	}
	if len(shares) == 0 {
		return 0, 0
	}
	return median(shares), n
}

// plainHTTPWhy says where the one-worker-per-core pool ns loses to the
// plain process: the split of the work between its workers, and the CPU
// per request of each side; connect: every request is a new connection.
func plainHTTPWhy(ns, plain *side, connect bool) string {
	share, n := busiestShare(ns)
	nsum, psum := summarize(ns), summarize(plain)
	if n < 2 || nsum.cpuPerReq == 0 || psum.cpuPerReq == 0 {
		return ""
	}
	why := fmt.Sprintf("; the busiest of the %d workers did %.0f%% of their CPU (median of rounds; an even split is %.0f%%), "+
		"and a request cost %s of CPU against %s", n, 100*share, 100/float64(n), fmtDur(nsum.cpuPerReq), fmtDur(psum.cpuPerReq))
	switch {
	case share > 1/float64(n)+0.1:
		why += ": a keep-alive connection stays with the worker that accepted it, and a few connections over one-core " +
			"workers split unevenly, so the busiest worker's core is the limit where one process's goroutines use every core"
	case float64(nsum.cpuPerReq) > 1.03*float64(psum.cpuPerReq):
		why += ": the split is even and the difference is the CPU per request, likely each worker's Go runtime going " +
			"idle and waking on its own where the one process has every connection to keep it busy"
		if connect {
			why += "; and each new connection wakes every worker's poller (they share the listening socket), one of which accepts it"
		}
	}
	return why
}

// dataPathDiscussion explains the mechanisms behind the figures, which do
// not change from run to run.
const dataPathDiscussion = `How to read it: on keep-alive connections a worker reports BUSY once per connection, so the rows are
the data path alone and the master's CPU share should be about zero. On connect-per-request every
request is an accept and a change of the worker's state; the Go worker library reports the change to
idle only after a short grace with no new connection, and counts requests in one cumulative
` + "`REQUESTS=n`" + ` word (docs/protocol.md), so a worker kept busy reports nothing per request. The extra CPU
per request under nsfd, beside the master's share, is what the status protocol still costs.
`

// recordNotifyCPU adds issue 18's target on the master's CPU on the notify
// path: its CPU per connection over all rounds of s, an nsfd side of a
// connect-per-request workload (every connection is an accept and a status
// report), scaled to the target's rate.
func recordNotifyCPU(title string, s *side) {
	var cpu, elapsed time.Duration
	conns := 0
	for _, r := range s.rounds {
		cpu += r.masterCPU
		elapsed += r.load.Elapsed
		conns += r.load.Requests
	}
	if conns == 0 || elapsed <= 0 {
		return
	}
	perConn := cpu / time.Duration(conns)
	rate := float64(conns) / elapsed.Seconds()
	share := perConn.Seconds() * targetNotifyRate
	t := target{order: orderDataPath, what: fmt.Sprintf("master CPU, %s under nsfd, at %d connections/s", title, targetNotifyRate),
		goal: fmt.Sprintf("≤ %.0f%% of a CPU", 100*targetNotifyShare), met: share <= targetNotifyShare,
		measured: fmt.Sprintf("%.1f%% (%.1f µs of master CPU per connection × %d/s; measured: %.1f%% of a CPU at %.0f connections/s, "+
			"%s of CPU over %d connections: utime+stime, or the threads' schedstat when more)", 100*share, perConn.Seconds()*1e6, targetNotifyRate, 100*cpu.Seconds()/elapsed.Seconds(),
			rate, fmtDur(cpu), conns)}
	if !t.met {
		t.note = fmt.Sprintf("%.1f points over: %.1f µs per connection is the master handling the workers' status datagrams "+
			"(a worker reports turning busy and, after a grace with no new connection, idle) and waking for them; "+
			"see § Data path", 100*(share-targetNotifyShare), perConn.Seconds()*1e6)
	}
	addTarget(t)
}
