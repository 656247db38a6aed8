package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
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

// overhead is one measurement of the master with many idle workers.
type overhead struct {
	daemons, perDaemon int
	running            int           // workers running after the idle window
	startup            time.Duration // from exec of the master until all workers run
	startupCPU         time.Duration // the master's CPU during start-up
	window             time.Duration
	idleCPU            time.Duration // the master's CPU during the idle window
	mem                memInfo
	base               memInfo // the master with one daemon of one worker
	limitNote          string
}

var overheadResult *overhead

// BenchmarkMasterOverhead runs the master with -bench.idle-daemons daemons of
// -bench.idle-workers idle workers each (`sleep`, type = simple) and reads
// its RSS and CPU from /proc once all of them run.
func BenchmarkMasterOverhead(b *testing.B) {
	if overheadResult != nil {
		reportOverhead(b, overheadResult) // a longer -benchtime: the measurement is not repeated
		return
	}
	o := &overhead{daemons: *flagDaemons, perDaemon: *flagIdle, window: *flagIdleWin}
	total := o.daemons * o.perDaemon
	if o.daemons < 1 || o.perDaemon < 1 {
		b.Fatal("-bench.idle-daemons and -bench.idle-workers must be positive")
	}
	note, err := ensureLimits(total)
	if err != nil {
		b.Skipf("cannot run %d workers here: %v", total, err)
	}
	o.limitNote = note
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skip("no sleep(1) for the idle workers:", err)
	}
	idleConf := func(n int) string {
		return fmt.Sprintf("command = %s 100000\nport = 127.0.0.1:0\ntype = simple\n"+
			"min_servers = %d\nmax_servers = %d\nmin_spare_servers = 0\nmax_spare_servers = %d\nmax_requests = 0\n",
			sleep, n, n, n-1)
	}
	running := func(m *master) int {
		n := 0
		for _, p := range children(m.pid()) {
			if p.comm == "sleep" {
				n++
			}
		}
		return n
	}
	waitRunning := func(m *master, n int) {
		b.Helper()
		t0 := time.Now()
		if !waitFor(2*time.Minute, 100*time.Millisecond, func() bool { return !m.running() || running(m) >= n }) || !m.running() {
			b.Fatalf("%d of %d workers running after %v\n%s", running(m), n, time.Since(t0).Round(time.Millisecond), m.diagnostics())
		}
	}

	// The baseline: the same master with one daemon of one worker.
	small := startMaster(b, map[string]string{"idle00": idleConf(1)})
	waitRunning(small, 1)
	time.Sleep(time.Second) // let it settle as the big one does in its idle window
	if o.base, err = readMem(small.pid()); err != nil {
		b.Fatal(err)
	}
	if err := small.stop(time.Minute); err != nil {
		b.Error(err)
	}

	confs := map[string]string{}
	for i := range o.daemons {
		confs[fmt.Sprintf("idle%02d", i)] = idleConf(o.perDaemon)
	}
	t0 := time.Now()
	m := startMaster(b, confs)
	waitRunning(m, total)
	o.startup = time.Since(t0)
	pid := m.pid()
	o.startupCPU = procCPU(pid)

	time.Sleep(o.window) // the idle window: measure, do nothing
	o.idleCPU = procCPU(pid) - o.startupCPU
	if o.mem, err = readMem(pid); err != nil {
		b.Fatal(err)
	}
	o.running = running(m)
	if o.running != total {
		b.Errorf("%d workers running after the idle window, want %d", o.running, total)
	}
	if err := m.stop(time.Minute); err != nil {
		b.Error(err)
	}
	overheadResult = o
	reportOverhead(b, o)
	printOverhead(os.Stdout, o)
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

func printOverhead(w io.Writer, o *overhead) {
	rss := mib(o.mem.rss)
	cpuMax := targetIdleCPUShare * o.window.Seconds()
	fmt.Fprintf(w, "\nnsfd master overhead: %d daemons × %d idle workers (sleep, type = simple)\n", o.daemons, o.perDaemon)
	if n := o.daemons * o.perDaemon; n != targetWorkers {
		fmt.Fprintf(w, "  (the targets are for %d workers; this run has %d)\n", targetWorkers, n)
	}
	fmt.Fprintf(w, "  workers running             %d, all up %v after the master's exec\n", o.running, o.startup.Round(time.Millisecond))
	fmt.Fprintf(w, "  master RSS (VmRSS)          %.1f MiB   target ≤ %d MiB: %s\n", rss, targetRSSMiB, verdict(rss <= targetRSSMiB))
	fmt.Fprintf(w, "  master peak RSS (VmHWM)     %.1f MiB\n", mib(o.mem.hwm))
	fmt.Fprintf(w, "  of which RssAnon / RssFile  %.1f / %.1f MiB (heap and stacks / binary and libraries)\n", mib(o.mem.anon), mib(o.mem.fileRSS))
	if n := o.daemons * o.perDaemon; n > 1 && o.base.rss > 0 {
		fmt.Fprintf(w, "  baseline, 1 daemon × 1      %.1f MiB RSS, %d threads: %.1f KiB and %.2f threads more per worker\n",
			mib(o.base.rss), o.base.threads, float64(o.mem.rss-o.base.rss)/1024/float64(n-1), float64(o.mem.threads-o.base.threads)/float64(n-1))
	}
	fmt.Fprintf(w, "  master CPU, %v idle        %.3f s     target ≈ 0 (< %.2f s): %s\n", o.window, o.idleCPU.Seconds(), cpuMax, verdict(o.idleCPU.Seconds() < cpuMax))
	fmt.Fprintf(w, "  master CPU during start-up  %.2f s\n", o.startupCPU.Seconds())
	fmt.Fprintf(w, "  master threads              %d\n", o.mem.threads)
	if o.limitNote != "" {
		fmt.Fprintf(w, "  %s\n", o.limitNote)
	}
	fmt.Fprintln(w)
}
