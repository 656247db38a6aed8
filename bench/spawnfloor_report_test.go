package bench

// The report of issue 18's spawning rows: nsfd's start of the big fleet
// against the posix_spawn floor, the CPU a spawned process costs, and kill
// → replacement at 100 and 1000 processes.

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Targets of issue 18 on spawning.
const (
	targetFloorFactor = 1.3                     // start of 1000: nsfd ≤ 1.3× the posix_spawn floor
	targetSpawnCPU    = 1500 * time.Microsecond // CPU per spawned process, master's share included
	targetKill100     = 1500 * time.Microsecond // kill → replacement running, median, 100 processes
	targetKill1000    = 2 * time.Millisecond    // the same with 1000
)

// orderSpawn places the section after the supervisord comparison it shares
// its fleets with.
const orderSpawn = orderSupervisord + 1

// overBy says by how much got exceeds the target want, for a missed row:
// "0.42 ms (28%) over".
func overBy(got, want time.Duration) string {
	return fmt.Sprintf("%s (%.0f%%) over", fmtDur(got-want), 100*(got.Seconds()/want.Seconds()-1))
}

// cpuSplit is "2.1 ms (master 0.4 ms + process 1.7 ms)": the CPU per
// process of a side's median run, split.
func cpuSplit(runs []startRun, n int) string {
	r := medianRun(runs, n)
	return fmt.Sprintf("%s (master %s + process %s)", fmtDur(r.perProcCPU(n)),
		fmtDur(r.masterCPU/time.Duration(n)), fmtDur(r.childCPU/time.Duration(n)))
}

// medianRun returns the run whose CPU per process is the median (the
// lower middle one for an even count).
func medianRun(runs []startRun, n int) startRun {
	if len(runs) == 0 {
		return startRun{}
	}
	s := slices.Clone(runs)
	slices.SortStableFunc(s, func(a, b startRun) int { return cmp.Compare(a.perProcCPU(n), b.perProcCPU(n)) })
	return s[(len(s)-1)/2]
}

// recordSpawn adds issue 18's spawning targets and their section.
func recordSpawn(c *svComparison) {
	n := c.idle.n
	quickNote := ""
	if n != targetWorkers {
		quickNote = fmt.Sprintf(" (this run: %d; the target is for %d)", n, targetWorkers)
	}
	floorCPU := "" // for the notes of missed kill rows: what one bare spawn cost here
	if fl := c.spawn[sideFloor]; len(fl) > 0 {
		_, cpu := medianRuns(fl, n)
		floorCPU = fmt.Sprintf("; a bare posix_spawn of `sleep` cost %s of CPU in this run (the floor)", fmtDur(cpu))
	}
	ns, fl := c.spawn[sideNsfd], c.spawn[sideFloor]
	upNs, cpuNs := medianRuns(ns, n)
	if len(fl) > 0 {
		upFl, _ := medianRuns(fl, n)
		r := upNs.Seconds() / upFl.Seconds()
		rounds := "one round"
		if len(ns) > 1 {
			rounds = fmt.Sprintf("median of %d rounds", len(ns))
		}
		t := target{order: orderSpawn, what: fmt.Sprintf("start → all %d processes running, ÷ the posix_spawn floor, %s%s", n, rounds, quickNote),
			goal: fmt.Sprintf("nsfd ≤ %.1f× the floor", targetFloorFactor), met: r <= targetFloorFactor,
			measured: fmt.Sprintf("%.2f× (%s vs %s)", r, fmtDur(upNs), fmtDur(upFl))}
		if !t.met {
			t.note = fmt.Sprintf("%s slower than %.1f× the floor (%.0f%% over); a process costs %s of CPU under nsfd "+
				"against %s at the floor: on %d shared CPUs a start of many is bound by the CPU it needs; see § Spawning",
				fmtDur(upNs-time.Duration(targetFloorFactor*float64(upFl))), targetFloorFactor, 100*(r/targetFloorFactor-1),
				cpuSplit(ns, n), cpuSplit(fl, n), runtime.NumCPU())
		}
		addTarget(t)
	}
	t := target{order: orderSpawn, what: fmt.Sprintf("CPU per spawned process, start of %d%s", n, quickNote),
		goal: "≤ " + fmtDur(targetSpawnCPU), met: cpuNs <= targetSpawnCPU, measured: cpuSplit(ns, n)}
	if len(fl) > 0 {
		t.measured += "; floor " + cpuSplit(fl, n)
	}
	if !t.met {
		r := medianRun(ns, n)
		part := "the process's own, between the fork and `sleep` running"
		if r.masterCPU > r.childCPU {
			part = "the master's"
		}
		t.note = fmt.Sprintf("%s; most of it is %s; see § Spawning", overBy(cpuNs, targetSpawnCPU), part)
	}
	addTarget(t)
	killFloor := func(size int) string { // for the notes of missed kill rows: the floor's kill → replacement
		k := c.bigKillFloor
		if len(k) == 0 {
			return ""
		}
		f := fmt.Sprintf("; the floor (spawnfloor replacing a child at once: SIGCHLD, waitpid, posix_spawn), "+
			"killed in turn with nsfd's %d-process fleet and timed by the same poller, took %s (p99 %s, %d kills)",
			n, fmtDur(median(k)), fmtDur(p99(k)), len(k))
		if size == n {
			f += fmt.Sprintf(": nsfd %.2f× it", median(c.bigKill).Seconds()/median(k).Seconds())
		}
		return f
	}
	killRow := func(size int, kills []time.Duration, goal time.Duration) {
		m := median(kills)
		t := target{order: orderSpawn, what: fmt.Sprintf("kill → replacement running, median of %d (%d processes)", len(kills), size),
			goal: "≤ " + fmtDur(goal), met: m <= goal, measured: fmt.Sprintf("%s (p99 %s)", fmtDur(m), fmtDur(p99(kills)))}
		if !t.met {
			t.note = fmt.Sprintf("%s; the time is the master's reaction to the pidfd, its spawn, and the process's "+
				"fork-to-exec, polled at ≥ 200 µs (§ nsfd vs supervisord, Polling)%s%s; see § Spawning", overBy(m, goal), floorCPU, killFloor(size))
		}
		addTarget(t)
	}
	killRow(c.churnN, c.kill[sideNsfd], targetKill100)
	if len(c.bigKill) > 0 {
		killRow(n, c.bigKill, targetKill1000)
	}
	addSection(orderSpawn, "Spawning: nsfd vs the posix_spawn floor", func(w io.Writer) { writeSpawn(w, c) })
}

// writeSpawn writes the body of the spawning section.
func writeSpawn(w io.Writer, c *svComparison) {
	n := c.idle.n
	fmt.Fprintf(w, "Issue 18's floor: `bench/spawnfloor/spawnfloor.c` (built with gcc -O2 at run time; %s) "+
		"`posix_spawn`s the same %d `sleep %s` processes, one after the other with its own environment and "+
		"descriptors (stdin /dev/null, stdout and stderr a file: no pipes, no listener), and then waits. The "+
		"benchmark starts it as it starts the masters, in a PID namespace of its own, and times it the same way: "+
		"from its exec until every child of it has exec'd `sleep` (`/proc/PID/comm`), polled from outside by the "+
		"same loop. glibc's posix_spawn returns once the child has exec'd (CLONE_VFORK), so the floor spawns one "+
		"process at a time; a master that spawns while earlier children exec can start a fleet faster on several "+
		"CPUs, and the floor for the work done is its CPU per process. It ran in the rounds of the masters' start of %d: ",
		c.floor, n, sleepSeconds, n)
	if len(c.spawn[sideFloor]) == 0 {
		fmt.Fprintln(w, "**not in this run** (it could not be built).")
		fmt.Fprintln(w)
	} else if len(c.spawn[sideFloor]) == 1 {
		fmt.Fprintln(w, "one round, after nsfd's and supervisord's.")
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "%d rounds: %d of the three sides, the first nsfd, supervisord, floor, then each side first once; "+
			"then %d of nsfd and the floor alone (supervisord's round takes half a minute, theirs seconds), "+
			"each first in turn. nsfd's figures are the median of its %d rounds.\n\n",
			len(c.spawn[sideFloor]), len(c.spawn[sideFloor])-floorRounds, floorRounds, len(c.spawn[sideNsfd]))
	}

	fmt.Fprintln(w, "**CPU per spawned process** = (the master's utime+stime from its exec until all N run, from "+
		"`/proc/PID/stat` in 10 ms ticks, + the sum over the N processes of their own run time at that moment, "+
		"`se.sum_exec_runtime` of `/proc/PID/sched`) ÷ N. The master's part includes its own start (runtime, "+
		"configuration, sockets: a fixed cost spread over N); the process's part is its main thread from the fork "+
		"on: the spawning child's work before the exec, the exec, and `sleep`'s own start-up (dynamic loader) when it "+
		"is done by then. For the floor, \"master\" is spawnfloor. Each figure is the round with the median CPU per process.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | nsfd | supervisord | posix_spawn floor |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	row := func(what string, f func(runs []startRun) string) {
		cells := []string{what}
		for side := range nSpawnSides {
			if runs := c.spawn[side]; len(runs) > 0 {
				cells = append(cells, f(runs))
			} else {
				cells = append(cells, "–")
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	row(fmt.Sprintf("start → all %d running, median", n), func(r []startRun) string { up, _ := medianRuns(r, n); return fmtDur(up) })
	row("rounds", func(r []startRun) string {
		var s []string
		for _, x := range r {
			s = append(s, fmtDur(x.up))
		}
		return strings.Join(s, ", ")
	})
	if fl := c.spawn[sideFloor]; len(fl) > 0 {
		upFl, _ := medianRuns(fl, n)
		row("÷ the floor", func(r []startRun) string {
			up, _ := medianRuns(r, n)
			return fmt.Sprintf("%.2f×", up.Seconds()/upFl.Seconds())
		})
	}
	row("master CPU ÷ N", func(r []startRun) string { return fmtDur(medianRun(r, n).masterCPU / time.Duration(n)) })
	row("a process's own CPU until all ran (mean)", func(r []startRun) string { return fmtDur(medianRun(r, n).childCPU / time.Duration(n)) })
	row("**CPU per spawned process**", func(r []startRun) string { _, cpu := medianRuns(r, n); return "**" + fmtDur(cpu) + "**" })
	fmt.Fprintln(w)
	if fl := c.spawn[sideFloor]; len(fl) > 0 {
		if r := medianRun(fl, n); r.floor != nil {
			fmt.Fprintf(w, "spawnfloor's own account of that round: its %d `posix_spawn` calls returned %s after its `main` "+
				"began, having used %s of CPU (getrusage: %s per process); its children, reaped after it was stopped, "+
				"had used %s each in all (RUSAGE_CHILDREN: the spawn, the exec, `sleep`'s start-up and death).\n\n", r.floor.spawned, fmtDur(r.floor.loop), fmtDur(r.floor.selfCPU),
				fmtDur(r.floor.selfCPU/time.Duration(max(1, r.floor.spawned))), fmtDur(r.floor.children/time.Duration(max(1, r.floor.spawned+r.floor.respawn))))
		}
	}
	fmt.Fprintf(w, "**Kill → replacement running** (nsfd; SIGKILL to a random process, timed until a new child of the "+
		"master has exec'd `sleep`, as in § nsfd vs supervisord): %d processes, median %s, p99 %s over %d kills.",
		c.churnN, fmtDur(median(c.kill[sideNsfd])), fmtDur(p99(c.kill[sideNsfd])), len(c.kill[sideNsfd]))
	if len(c.bigKill) > 0 {
		fmt.Fprintf(w, " %d processes (the last round's fleet, the other sides' idle beside it; at most %d kills or "+
			"about %v): median %s, p99 %s over %d kills.", n, bigKills, bigKillIn, fmtDur(median(c.bigKill)),
			fmtDur(p99(c.bigKill)), len(c.bigKill))
		if k := c.bigKillFloor; len(k) > 0 {
			fmt.Fprintf(w, " The floor's fleet of that round, killed in turn with nsfd's (spawnfloor reaps a child on "+
				"SIGCHLD and posix_spawns its replacement at once, and nothing else): median %s, p99 %s over %d kills; "+
				"nsfd %.2f× the floor.", fmtDur(median(k)), fmtDur(p99(k)), len(k), median(c.bigKill).Seconds()/median(k).Seconds())
		}
		if p := c.bigPoll; p.reads > 0 {
			fmt.Fprintf(w, " While it waited for those replacements the benchmark read the master's children %d times, "+
				"%s of wall time and %s of its CPU a read, %.0f%% of a CPU over the waits: the poller's share of the "+
				"figure, against the 100-process fleet's %s a read.", p.reads, fmtDur(p.wall/time.Duration(p.reads)),
				fmtDur(p.cpu/time.Duration(p.reads)), 100*p.cpu.Seconds()/max(1e-9, p.waited.Seconds()),
				fmtDur(c.poll[sideNsfd].cpu/time.Duration(max(1, c.poll[sideNsfd].reads))))
		}
		if p := c.bigPollFloor; p.reads > 0 {
			fmt.Fprintf(w, " For the floor's kills it read the floor's children %d times, %s of wall time and %s of its CPU a read "+
				"(one thread's children file, where nsfd's master has several).", p.reads, fmtDur(p.wall/time.Duration(p.reads)),
				fmtDur(p.cpu/time.Duration(p.reads)))
		}
	} else {
		fmt.Fprintf(w, " No kills on a %d-process fleet in this run (quick mode has none).", targetWorkers)
	}
	fmt.Fprintln(w)
}
