package bench

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Targets of the PreFork issue for the master with 1000 idle workers.
const (
	targetWorkers      = 1000
	targetRSSMiB       = 40
	targetIdleCPUShare = 0.01 // "≈ 0": under one percent of a core over the idle window
)

// overhead is one master with many idle processes: nsfd's, or
// supervisord's in the comparison (measureIdle). BenchmarkMasterOverhead,
// which reports nsfd's, is in supervisord_test.go, after the comparison that
// starts its fleet.
type overhead struct {
	daemons, perDaemon int
	running            int           // processes running after the idle window
	baseStartup        time.Duration // from exec of the master with one process until it runs
	startup            time.Duration // from exec of the master until all processes run
	startupCPU         time.Duration // the master's CPU during start-up
	childCPU           time.Duration // the processes' own CPU until they ran sleep
	window             time.Duration
	idleCPU            time.Duration // the master's CPU during the idle window
	mem                memInfo
	fds                fdCount // file descriptors the master holds
	base               memInfo // the master with one program of one process
	baseFDs            fdCount // and its file descriptors
	limitNote          string
}

// ensureLimits checks that this process and the master it starts may have
// total more processes and the file descriptors they need: the master holds
// two pipes and a pidfd per worker. It raises RLIMIT_NOFILE when it can and
// says so.
func ensureLimits(total int) (string, error) {
	var note string
	need := uint64(4*total + 256)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return "", err
	}
	if rl.Cur < need {
		nl := syscall.Rlimit{Cur: need, Max: max(rl.Max, need)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
			return "", fmt.Errorf("RLIMIT_NOFILE %d/%d, need %d: %w", rl.Cur, rl.Max, need, err)
		}
		note = fmt.Sprintf("RLIMIT_NOFILE raised from %d to %d", rl.Cur, need)
	}
	for _, f := range []string{"/proc/sys/kernel/pid_max", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lim, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil { // "max"
			continue
		}
		if lim < total+512 {
			return note, fmt.Errorf("%s is %d, need room for %d processes", f, lim, total)
		}
	}
	return note, nil
}

func reportOverhead(b *testing.B, o *overhead) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(o.running), "workers")
	b.ReportMetric(mib(o.mem.rss), "rss-MiB")
	b.ReportMetric(o.idleCPU.Seconds(), "idle-cpu-s")
	b.ReportMetric(o.startup.Seconds(), "startup-s")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// recordOverhead adds nsfd's master overhead, its two targets and their
// section, to the report.
func recordOverhead(o *overhead) {
	n := o.daemons * o.perDaemon
	rss := mib(o.mem.rss)
	cpuMax := targetIdleCPUShare * o.window.Seconds()
	perWorker := 0.0 // KiB of RSS per worker above the one-worker master
	if n > 1 && o.base.rss > 0 {
		perWorker = float64(o.mem.rss-o.base.rss) / 1024 / float64(n-1)
	}
	fleet := fmt.Sprintf("%d idle workers", n)
	if n != targetWorkers {
		fleet += fmt.Sprintf(" (this run; the target is for %d)", targetWorkers)
	}
	rssTarget := target{order: orderOverhead, what: "master RSS, " + fleet, goal: fmt.Sprintf("≤ %d MiB", targetRSSMiB),
		measured: fmt.Sprintf("%.1f MiB", rss), met: rss <= targetRSSMiB}
	if !rssTarget.met {
		rssTarget.note = fmt.Sprintf("%.1f MiB is the mapped binary and libraries (RssFile), %.1f MiB heap and stacks, "+
			"%.0f KiB more per worker than with one; see § Master overhead", mib(o.mem.fileRSS), mib(o.mem.anon), perWorker)
	}
	addTarget(rssTarget)
	cpuTarget := target{order: orderOverhead, what: fmt.Sprintf("master CPU over %v idle, %s", o.window, fleet),
		goal:     fmt.Sprintf("≈ 0 (< %.2f s: %.0f%% of a CPU)", cpuMax, 100*targetIdleCPUShare),
		measured: fmt.Sprintf("%.2f s", o.idleCPU.Seconds()), met: o.idleCPU.Seconds() < cpuMax}
	if !cpuTarget.met {
		cpuTarget.note = "see § Master overhead"
	}
	addTarget(cpuTarget)
	addSection(orderOverhead, "Master overhead", func(w io.Writer) { writeOverhead(w, o) })
}

// writeOverhead writes the body of the master-overhead section.
func writeOverhead(w io.Writer, o *overhead) {
	n := o.daemons * o.perDaemon
	fmt.Fprintf(w, "Target of the PreFork issue: **with %d workers, master RSS ≤ %d MiB and idle CPU ≈ 0.** "+
		"`nsfd run` with %d daemons of %d workers each, every daemon on its own `127.0.0.1:0`, `type = simple`, "+
		"the worker `sleep 100000`: the nsfd fleet of the supervisord comparison (§ nsfd vs supervisord, where its "+
		"configuration is), started once for both. Once all %d run, the master's utime+stime over a %v idle window "+
		"and then its VmRSS, RssAnon/RssFile and threads from `/proc/PID/status`; the same master with one daemon "+
		"of one worker, settled for a second, is the baseline.\n\n",
		targetWorkers, targetRSSMiB, o.daemons, o.perDaemon, n, o.window)
	if n != targetWorkers {
		fmt.Fprintf(w, "This run has %d workers, not the %d the targets are set for (`-bench.quick`).\n\n", n, targetWorkers)
	}
	rss := mib(o.mem.rss)
	cpuMax := targetIdleCPUShare * o.window.Seconds()
	fmt.Fprintln(w, "| | nsfd | target |")
	fmt.Fprintln(w, "| --- | ---: | --- |")
	fmt.Fprintf(w, "| workers running after the idle window | %d | |\n", o.running)
	fmt.Fprintf(w, "| all %d up, from the master's exec | %s | |\n", n, fmtDur(o.startup))
	fmt.Fprintf(w, "| master CPU during start-up | %.2f s | |\n", o.startupCPU.Seconds())
	fmt.Fprintf(w, "| **master RSS (VmRSS)** | **%.1f MiB** | ≤ %d MiB: **%s** |\n", rss, targetRSSMiB, verdict(rss <= targetRSSMiB))
	fmt.Fprintf(w, "| of which RssAnon / RssFile (heap and stacks / binary and libraries) | %.1f / %.1f MiB | |\n",
		mib(o.mem.anon), mib(o.mem.fileRSS))
	fmt.Fprintf(w, "| master peak RSS (VmHWM) | %.1f MiB | |\n", mib(o.mem.hwm))
	fmt.Fprintf(w, "| master threads / open file descriptors | %d / %d | |\n", o.mem.threads, o.fds.total())
	if n > 1 && o.base.rss > 0 {
		fmt.Fprintf(w, "| baseline: 1 daemon × 1 worker | %.1f MiB, %d threads | |\n", mib(o.base.rss), o.base.threads)
		fmt.Fprintf(w, "| per extra worker | %.1f KiB, %.2f threads | |\n",
			float64(o.mem.rss-o.base.rss)/1024/float64(n-1), float64(o.mem.threads-o.base.threads)/float64(n-1))
	}
	fmt.Fprintf(w, "| **master CPU over %v idle** | **%.2f s** | ≈ 0 (< %.2f s): **%s** |\n", o.window, o.idleCPU.Seconds(),
		cpuMax, verdict(o.idleCPU.Seconds() < cpuMax))
	fmt.Fprintln(w)
	fmt.Fprint(w, "`/proc` counts CPU in 10 ms ticks.")
	if n > 1 && o.baseFDs != nil {
		var kinds []string
		for _, kind := range []string{"pipe", "pidfd", "socket", "anon", "file"} {
			if per := float64(o.fds[kind]-o.baseFDs[kind]) / float64(n-1); per >= 0.5 {
				kinds = append(kinds, fmt.Sprintf("%.1f %s", per, kind))
			}
		}
		fmt.Fprintf(w, " Per worker the master holds %.1f more file descriptors than with one daemon of one (%s).",
			float64(o.fds.total()-o.baseFDs.total())/float64(n-1), strings.Join(kinds, ", "))
		if per := float64(o.fds["pidfd"]-o.baseFDs["pidfd"]) / float64(n-1); per > 1.5 {
			fmt.Fprint(w, " Two pidfds a worker: `os.StartProcess` keeps a duplicate of a pidfd the caller asks for "+
				"in `SysProcAttr.PidFD` (Go 1.23 and later).")
		}
	}

	if o.limitNote != "" {
		fmt.Fprintf(w, " The benchmark raised its limits first: %s.", o.limitNote)
	}
	fmt.Fprintln(w)
}
