package bench

// The report of the supervisord comparison: its targets, charts and
// section, from what BenchmarkSupervisord measured.

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// fmtDur formats a duration for the report with three significant figures
// or so.
func fmtDur(d time.Duration) string {
	switch s := d.Seconds(); {
	case s == 0:
		return "0"
	case s >= 10:
		return fmt.Sprintf("%.1f s", s)
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case s >= 0.01:
		return fmt.Sprintf("%.0f ms", s*1e3)
	case s >= 0.001:
		return fmt.Sprintf("%.1f ms", s*1e3)
	default:
		return fmt.Sprintf("%.0f µs", s*1e6)
	}
}

// p99 returns the 99th percentile of v (nearest rank).
func p99(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return percentile(s, 0.99)
}

// perProc returns a master's RSS per managed process in KiB: VmRSS ÷ n, and
// the marginal (VmRSS − VmRSS with one process) ÷ (n − 1).
func perProc(o *overhead, n int) (total, marginal float64) {
	total = float64(o.mem.rss) / 1024 / float64(n)
	if n > 1 {
		marginal = float64(o.mem.rss-o.base.rss) / 1024 / float64(n-1)
	}
	return total, marginal
}

// perSpawn returns the time a side took per process of the largest fleet
// after its first: (T_N − T_1) ÷ (N − 1), its start-up without the master's
// own.
func perSpawn(c *svComparison, side int) time.Duration {
	n := c.idle.n
	if n < 2 {
		return 0
	}
	return (median(c.up[n][side]) - median(c.up[1][side])) / time.Duration(n-1)
}

// crossover returns the number of processes at which the two masters'
// RSS, extrapolated linearly from one process and n, are equal, or 0 if the
// lines do not cross beyond one process.
func crossover(ns, sv *overhead) float64 {
	n := ns.daemons * ns.perDaemon
	_, margNs := perProc(ns, n)
	_, margSv := perProc(sv, n)
	if margNs == margSv {
		return 0
	}
	if k := 1 + float64(sv.base.rss-ns.base.rss)/1024/(margNs-margSv); k > 1 {
		return k
	}
	return 0
}

// rssReason says how VmRSS ÷ N compares across fleet sizes, from the two
// masters' RSS with one process and per further process: the ratio moves
// from the first to the second as N grows.
func rssReason(ns, sv *overhead) string {
	n := ns.daemons * ns.perDaemon
	_, margNs := perProc(ns, n)
	_, margSv := perProc(sv, n)
	base := float64(ns.base.rss) / float64(sv.base.rss)
	marg := margNs / max(1e-9, margSv)
	s := fmt.Sprintf("VmRSS ÷ N, nsfd's over supervisord's, runs from %.2f with one process (%.1f vs %.1f MiB) "+
		"towards %.2f as N grows, the ratio of what each further process adds (%.1f vs %.1f KiB)", base,
		mib(ns.base.rss), mib(sv.base.rss), marg, margNs, margSv)
	if k := crossover(ns, sv); k > 0 {
		s += fmt.Sprintf("; the two masters are the same size at about %.0f processes", k)
	}
	if min(base, marg) > 1/float64(targetRSSFactor) {
		s += fmt.Sprintf("; 1/%d is reached at no fleet size", targetRSSFactor)
	}
	return s + "."
}

// vsText is "ratio (nsfd vs supervisord)" for the summary.
func vsText(a, b time.Duration) string {
	return fmt.Sprintf("%s (%s vs %s)", ratioText(a.Seconds(), b.Seconds()), fmtDur(a), fmtDur(b))
}

// recordSupervisord adds the comparison's section, targets and charts to the
// report.
func recordSupervisord(c *svComparison) {
	n := c.idle.n
	ns, sv := c.idle.sides[sideNsfd], c.idle.sides[sideSv]
	addMachineNote(fmt.Sprintf("supervisord %s (%s), run by %s", c.sv.version, c.sv.supervisord, cmp.Or(c.sv.python, "Python")))
	quickNote := ""
	if n != targetWorkers {
		quickNote = fmt.Sprintf(" (quick: %d; the target is for %d)", n, targetWorkers)
	}

	upNs, upSv := median(c.up[n][sideNsfd]), median(c.up[n][sideSv])
	t := target{order: orderSupervisord, what: fmt.Sprintf("start → all %d processes running%s", n, quickNote),
		goal: fmt.Sprintf("nsfd ≤ 1/%d of supervisord's", targetUpFactor), measured: vsText(upNs, upSv),
		met: upNs*targetUpFactor <= upSv}
	if !t.met {
		t.note = "see § nsfd vs supervisord"
		if n > 1 {
			t.note = fmt.Sprintf("%s slower than 1/%d of supervisord's (%.0f%% over); ", fmtDur(upNs-upSv/targetUpFactor), targetUpFactor,
				100*(upNs.Seconds()*targetUpFactor/upSv.Seconds()-1)) + fmt.Sprintf("a process costs %s of CPU under nsfd, %s of it in the worker between the fork and "+
				"`sleep`, against %s under supervisord, whose first second is a poll timeout; see § nsfd vs supervisord",
				fmtDur((ns.startupCPU+ns.childCPU)/time.Duration(n)), fmtDur(ns.childCPU/time.Duration(n)),
				fmtDur((sv.startupCPU+sv.childCPU)/time.Duration(n)))
		}
	}
	addTarget(t)

	killNs, killSv := median(c.kill[sideNsfd]), median(c.kill[sideSv])
	t = target{order: orderSupervisord, what: fmt.Sprintf("kill → replacement running, median of %d (%d processes)", len(c.kill[sideNsfd]), c.churnN),
		goal: fmt.Sprintf("nsfd ≤ 1/%d of supervisord's", targetKillFactor), measured: vsText(killNs, killSv),
		met: killNs*targetKillFactor <= killSv}
	if !t.met {
		t.note = "see § nsfd vs supervisord"
	}
	addTarget(t)

	totNs, margNs := perProc(ns, n)
	totSv, margSv := perProc(sv, n)
	t = target{order: orderSupervisord, what: fmt.Sprintf("master RSS per managed process (VmRSS ÷ %d idle)%s", n, quickNote),
		goal:     fmt.Sprintf("nsfd ≤ 1/%d of supervisord's", targetRSSFactor),
		measured: fmt.Sprintf("%s (%.1f vs %.1f KiB; marginal %.1f vs %.1f KiB)", ratioText(totNs, totSv), totNs, totSv, margNs, margSv),
		met:      totNs*targetRSSFactor <= totSv}
	if !t.met {
		t.note = rssReason(ns, sv)
	}
	addTarget(t)

	dropNs, dropSv := median(c.drop[sideNsfd]), median(c.drop[sideSv])
	t = target{order: orderSupervisord, what: fmt.Sprintf("new daemon file → its worker running, median of %d", len(c.drop[sideNsfd])),
		goal: "≤ " + fmtDur(targetDrop), measured: fmt.Sprintf("%s (supervisord with `supervisorctl update`: %s, %s)",
			fmtDur(dropNs), fmtDur(dropSv), ratioText(dropNs.Seconds(), dropSv.Seconds())),
		met: dropNs <= targetDrop}
	if !t.met {
		t.note = "see § nsfd vs supervisord"
	}
	addTarget(t)

	sizes := slices.Sorted(maps.Keys(c.up))
	timeChart := barChart{order: orderSupervisord, file: "bench-supervisord-time.png",
		title:  "nsfd vs supervisord: time until the processes run (lower is better)",
		ylabel: "seconds (median)", series: []barSeries{{name: "nsfd"}, {name: "supervisord " + c.sv.version}}}
	addBars := func(group string, v [nSides]time.Duration) {
		timeChart.groups = append(timeChart.groups, group)
		for side := range nSides {
			timeChart.series[side].values = append(timeChart.series[side].values, v[side].Seconds())
		}
	}
	for _, size := range sizes {
		if size > 1 {
			addBars(fmt.Sprintf("start %d processes", size), [nSides]time.Duration{median(c.up[size][sideNsfd]), median(c.up[size][sideSv])})
		}
	}
	addBars("kill → replacement running", [nSides]time.Duration{killNs, killSv})
	addBars("new program file → running", [nSides]time.Duration{dropNs, dropSv})
	addChart(timeChart)
	addChart(barChart{order: orderSupervisord, file: "bench-supervisord-rss.png",
		title:  fmt.Sprintf("Master RSS per managed process, %d idle processes (lower is better)", n),
		ylabel: "KiB per process",
		groups: []string{fmt.Sprintf("VmRSS ÷ %d", n), fmt.Sprintf("marginal: (VmRSS − VmRSS with 1) ÷ %d", n-1)},
		series: []barSeries{{name: "nsfd", values: []float64{totNs, margNs}}, {name: "supervisord " + c.sv.version, values: []float64{totSv, margSv}}}})

	addSection(orderSupervisord, "nsfd vs supervisord", func(w io.Writer) { writeSupervisord(w, c) })
	recordSpawn(c)
}

// writeSupervisord writes the body of the comparison's section.
func writeSupervisord(w io.Writer, c *svComparison) {
	n := c.idle.n
	ns, sv := c.idle.sides[sideNsfd], c.idle.sides[sideSv]
	sleep, _ := exec.LookPath("sleep")
	fmt.Fprintf(w, "The same fleets under nsfd and under supervisord %s (Debian's package; see Machine), side by side "+
		"in one run: %d programs (nsfd: daemons) of N/%d processes each, every process `sleep %s`, its stdout and "+
		"stderr on pipes that the master reads.", c.sv.version, ns.daemons, ns.daemons, sleepSeconds)
	if n != targetWorkers {
		fmt.Fprintf(w, " **Quick mode** (`-bench.quick`): %d processes only, no %d-process fleet; %d kills, %d drops, a %v idle window.",
			n, targetWorkers, len(c.kill[sideNsfd]), len(c.drop[sideNsfd]), ns.window)
	}
	fmt.Fprint(w, "\n\n")

	row := func(what string, a, b time.Duration) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", what, fmtDur(a), fmtDur(b), ratioText(a.Seconds(), b.Seconds()))
	}
	fmt.Fprintln(w, "| | nsfd | supervisord | nsfd ÷ supervisord |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	for _, size := range slices.Sorted(maps.Keys(c.up)) {
		v := c.up[size]
		what := fmt.Sprintf("start → all %d running", size)
		if size == 1 {
			what = "start → 1 process running"
		}
		if len(v[sideNsfd]) > 1 {
			what += fmt.Sprintf(" (median of %d)", len(v[sideNsfd]))
		}
		row(what, median(v[sideNsfd]), median(v[sideSv]))
	}
	if n > 1 {
		rateNs, rateSv := perSpawn(c, sideNsfd), perSpawn(c, sideSv)
		row(fmt.Sprintf("start: each process after the first, (T%d − T1) ÷ %d", n, n-1), rateNs, rateSv)
	}
	row(fmt.Sprintf("master CPU during the start of %d", n), ns.startupCPU, sv.startupCPU)
	row("a process's own CPU until it ran `sleep` (mean; main thread)", ns.childCPU/time.Duration(n), sv.childCPU/time.Duration(n))
	row(fmt.Sprintf("**kill → replacement running**, median of %d", len(c.kill[sideNsfd])), median(c.kill[sideNsfd]), median(c.kill[sideSv]))
	row("kill → replacement running, p99", p99(c.kill[sideNsfd]), p99(c.kill[sideSv]))
	row(fmt.Sprintf("**new program file → running**, median of %d", len(c.drop[sideNsfd])), median(c.drop[sideNsfd]), median(c.drop[sideSv]))
	fmt.Fprintf(w, "| of which `supervisorctl update` | | %s | |\n", fmtDur(median(c.ctl)))
	mrow := func(what string, a, b float64, unit string) {
		fmt.Fprintf(w, "| %s | %.1f %s | %.1f %s | %s |\n", what, a, unit, b, unit, ratioText(a, b))
	}
	mrow("master RSS with 1 process", mib(ns.base.rss), mib(sv.base.rss), "MiB")
	mrow(fmt.Sprintf("master RSS with %d", n), mib(ns.mem.rss), mib(sv.mem.rss), "MiB")
	totNs, margNs := perProc(ns, n)
	totSv, margSv := perProc(sv, n)
	mrow(fmt.Sprintf("**RSS per managed process**: VmRSS ÷ %d", n), totNs, totSv, "KiB")
	mrow(fmt.Sprintf("marginal RSS per process: (VmRSS − VmRSS with 1) ÷ %d", n-1), margNs, margSv, "KiB")
	row(fmt.Sprintf("master CPU over %v idle, %d processes", ns.window, n), ns.idleCPU, sv.idleCPU)
	fmt.Fprintf(w, "| master threads / open descriptors with %d | %d / %d | %d / %d | |\n", n, ns.mem.threads, ns.fds.total(), sv.mem.threads, sv.fds.total())
	fmt.Fprintln(w)

	fmt.Fprintln(w, "What the figures say:")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- **supervisord acts once a second.** Its main loop waits in `poll()` with a 1 s timeout and runs its "+
		"state machine after each wake (`supervisord.py`, `runforever`). At start it waits out the first timeout before it "+
		"spawns anything: %s for one process, against %s for nsfd's whole master. A killed process's pipe closing wakes "+
		"it to reap, but the respawn waits for the next turn, a second later (two when the process was not yet a zombie "+
		"at the first wake: the p99). nsfd's master learns of the exit from the worker's pidfd and spawns at once.\n",
		fmtDur(median(c.up[1][sideSv])), fmtDur(median(c.up[1][sideNsfd])))
	if n > 1 {
		upNs, upSv := median(c.up[n][sideNsfd]), median(c.up[n][sideSv])
		nsM, nsW := ns.startupCPU/time.Duration(n), ns.childCPU/time.Duration(n)
		svM, svW := sv.startupCPU/time.Duration(n), sv.childCPU/time.Duration(n)
		fmt.Fprintf(w, "- **Start-up of %d**: %s against %s, %s; past supervisord's first second, a process every %s "+
			"against every %s, on %d shared CPUs. A process costs %s of CPU under nsfd, %s in the master and %s in the "+
			"worker before `sleep` runs (the master's own forked child sets LISTEN_PID and execs `sleep`: one exec, no "+
			"shim; its main thread only, a lower bound), and %s under supervisord, %s in supervisord and %s in its "+
			"fork (Python closing every descriptor below `minfds`, then the exec).\n",
			n, fmtDur(upNs), fmtDur(upSv), ratioText(upNs.Seconds(), upSv.Seconds()), fmtDur(perSpawn(c, sideNsfd)),
			fmtDur(perSpawn(c, sideSv)), runtime.NumCPU(), fmtDur(nsM+nsW), fmtDur(nsM), fmtDur(nsW),
			fmtDur(svM+svW), fmtDur(svM), fmtDur(svW))
	}
	fmt.Fprintf(w, "- **Memory** (a Go binary against a Python interpreter with supervisor's modules): %s\n", rssReason(ns, sv))
	fmt.Fprintf(w, "- **New program file**: nsfd reloads %v after etc/ goes quiet (inotify, 40 ms debounce), binds the new "+
		"daemon's socket, registers it and spawns; supervisord needs `supervisorctl update`, which is most of its time "+
		"(a Python process that starts, connects and asks).\n", fmtDur(median(c.drop[sideNsfd])))
	fmt.Fprintln(w)

	fmt.Fprintf(w, "How each side was set up (the files the benchmark writes; one program of %d shown):\n\n", n/ns.daemons)
	fmt.Fprintf(w, "nsfd, `etc/%s.ini` (and `etc/nsfd.ini`: the central log at level `info`):\n\n```ini\n%s```\n\n",
		programName(0), nsfdConf(sleep, n/ns.daemons))
	fmt.Fprintf(w, "supervisord, its main file and `conf.d/%s.ini`:\n\n```ini\n%s\n%s```\n\n",
		programName(0), svMainConf("DIR", svMinFDs(n)), svProgram(programName(0), sleep, n/ns.daemons))
	fmt.Fprintln(w, "- **Output.** nsfd gives each worker two pipes, stdout and stderr, and reads both line by line into its "+
		"one central log. supervisord gets its most common set-up, and the cheaper one: `redirect_stderr = true`, both "+
		"streams on one pipe (beside the stdin pipe it always makes), logged to a file per process in `childlogdir` "+
		"(`stdout_logfile = AUTO`, its default). `sleep` writes nothing, so what is compared is holding the pipes and files.")
	fmt.Fprintln(w, "- **Listener.** nsfd requires one per daemon: `port = 127.0.0.1:0`, a socket the workers inherit and "+
		"never use. supervisord's programs have none.")
	fmt.Fprintln(w, "- **Running** means exec'd: a process counts once its `/proc/PID/comm` is `sleep`. nsfd's master forks "+
		"each worker and execs it once (`NSFD_SPAWN=shim` would go through `nsfd __nsfd_exec` first); supervisord's forks run Python until they exec. `startsecs = 0` and "+
		"`start_seconds = 0`: neither master waits before calling a process started, and a killed process is never a "+
		"failed start (no back-off) on either side.")
	fmt.Fprintf(w, "- **minfds** = 4 × N + 256 when above its default of 1024 (%d here): what the benchmark gives nsfd's "+
		"master as RLIMIT_NOFILE. supervisord holds three descriptors per process and each of its forks closes every "+
		"descriptor below `minfds` before its exec.\n", svMinFDs(n))
	if c.pidNS {
		fmt.Fprintln(w, "- **Isolation.** Each master runs as the first process of a PID namespace of its own, so that "+
			"nothing it started outlives the benchmark (supervisord's processes have no parent-death signal).")
	} else {
		fmt.Fprintln(w, "- **Isolation.** No PID namespace could be made here: the masters ran as ordinary children of the "+
			"benchmark, which stops supervisord's processes itself.")
	}
	fmt.Fprint(w, "- **Start-up**: from the master's exec (`nsfd run --etc DIR`, `supervisord -n -c CONF`) until all "+
		"N processes run; the other side's fleet, when up, idles meanwhile.")
	var once []string // sizes measured in one round
	for _, size := range slices.Sorted(maps.Keys(c.up)) {
		if r := len(c.up[size][sideNsfd]); r > 1 {
			how := "alternating which side starts first"
			if size == n && len(c.spawn[sideFloor]) > 1 {
				how = fmt.Sprintf("with the posix_spawn floor (§ Spawning) as a third side, each starting first once after the first round, "+
					"%d of them nsfd's and the floor's alone (supervisord's: median of %d)", floorRounds, len(c.up[size][sideSv]))
			}
			fmt.Fprintf(w, " %d processes: median of %d rounds, %s.", size, r, how)
		} else {
			once = append(once, fmt.Sprint(size))
		}
	}
	what := strings.Join(once, " and ") + " processes"
	if what == "1 processes" {
		what = "1 process"
	}
	fmt.Fprintf(w, " %s: one round, nsfd first.\n", what)
	fmt.Fprintf(w, "- **Kill → replacement**: SIGKILL to a random process of the %d-process fleet, timed until a new child "+
		"of the master has exec'd `sleep`; the next kill waits until the killed process has been reaped. The two fleets "+
		"run side by side and take turns, alternating which goes first. supervisord: `autorestart = true`.\n", c.churnN)
	fmt.Fprintln(w, "- **New program file**: nsfd: `dropNN.ini.tmp` written into `etc/` and renamed to `dropNN.ini`; "+
		"supervisord: the same into its include directory, then `supervisorctl -c CONF update`. Timed from before the "+
		"write until the new process runs, `supervisorctl` included.")
	fmt.Fprintf(w, "- **Memory and CPU**: both %d-process fleets up at once, the masters' utime+stime over the same %v "+
		"idle window (`/proc` counts 10 ms ticks), then their VmRSS. \"With 1\": each master with one program of one "+
		"process, settled for a second. The target is judged on VmRSS ÷ N; the marginal cost per process is beside it.\n",
		n, ns.window)
	perRead := func(side int, d time.Duration) time.Duration {
		return d / time.Duration(max(1, c.poll[side].reads))
	}
	share := func(side int) float64 {
		return 100 * c.poll[side].cpu.Seconds() / max(1e-9, c.poll[side].waited.Seconds())
	}
	fmt.Fprintf(w, "- **Polling.** The benchmark reads the master's children from `/proc/PID/task/*/children` (one file per "+
		"thread, kept open) and the `/proc/PID/stat` of new ones, pausing 1/200 of the time waited so far and at least "+
		"200 µs between reads (nanosleep), on the same schedule for both sides. While it waited for replacements, a poll "+
		"cost the benchmark %s of CPU on nsfd's side (%d threads, a file each) and %s on supervisord's (%d), the read "+
		"itself %s and %s of wall time; the poller used %.0f%% of a CPU during nsfd's waits, which are short and polled "+
		"at the 200 µs floor, and %.1f%% during supervisord's. Both fall on nsfd's figures, never in its favour.\n",
		fmtDur(perRead(sideNsfd, c.poll[sideNsfd].cpu)), c.threads[sideNsfd], fmtDur(perRead(sideSv, c.poll[sideSv].cpu)),
		c.threads[sideSv], fmtDur(perRead(sideNsfd, c.poll[sideNsfd].wall)), fmtDur(perRead(sideSv, c.poll[sideSv].wall)),
		share(sideNsfd), share(sideSv))
}

func reportSupervisord(b *testing.B, c *svComparison) {
	b.ReportMetric(0, "ns/op")
	for side, name := range sideNames {
		b.ReportMetric(median(c.up[c.idle.n][side]).Seconds(), fmt.Sprintf("%s-up%d-s", name, c.idle.n))
		b.ReportMetric(float64(median(c.kill[side]).Microseconds())/1e3, name+"-kill-ms")
		b.ReportMetric(float64(median(c.drop[side]).Microseconds())/1e3, name+"-drop-ms")
		o := c.idle.sides[side]
		b.ReportMetric(float64(o.mem.rss)/1024/float64(c.idle.n), name+"-KiB/proc")
	}
}
