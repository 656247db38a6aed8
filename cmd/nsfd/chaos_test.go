//go:build linux

package main

// Fault injection (issue 8): the master under load while its workers are
// SIGKILLed, its configuration rolls a hundred times, it is itself killed
// with -9 and started again, its log sink stalls, and its PostgreSQL
// registry goes away and comes back.
//
// Each scenario has a short form, run by a plain `go test -race ./...`
// (seconds of chaos, generous bounds: the master under test is race-built
// and the machine is shared), and a long form with the figures:
//
//	go test -tags chaos -count=1 -run Chaos -v ./cmd/nsfd
//	NSFD_CHAOS=long go test -count=1 -run Chaos -v ./cmd/nsfd
//
// The measured figures are logged as a table and, with
// NSFD_CHAOS_REPORT=path, written to path: a markdown table if path ends in
// .md, JSON otherwise (each scenario rewrites the file with everything
// measured so far in this run).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/registry/pgtest"
	"golang.org/x/sys/unix"
)

// chaosTag is set by chaos_long_test.go under -tags chaos.
var chaosTag bool

// chaosScale is how much chaos a run applies.
type chaosScale struct {
	long     bool
	killFor  time.Duration // scenario 1: how long workers are killed
	killRate time.Duration // scenario 1: one kill per this
	reloads  int           // scenario 2
	logBlock time.Duration // scenario 4: how long the sink stays stalled
}

func chaosParams() chaosScale {
	if chaosTag || os.Getenv("NSFD_CHAOS") == "long" {
		return chaosScale{long: true, killFor: 30 * time.Second, killRate: 50 * time.Millisecond, reloads: 100, logBlock: 5 * time.Second}
	}
	return chaosScale{killFor: 2500 * time.Millisecond, killRate: 50 * time.Millisecond, reloads: 10, logBlock: 1500 * time.Millisecond}
}

func (s chaosScale) mode() string {
	if s.long {
		return "long"
	}
	return "short"
}

// TestChaosKillWorkers SIGKILLs a random ready worker every 50 ms under
// continuous load: the master stays up, each kill is replaced at once, and
// at most one request fails per kill (an echo worker serves one connection
// at a time; connections waiting in the backlog belong to the master's
// socket and survive).
//
// Only ready workers are killed: a worker that dies before it is ready is a
// failed start by design (the pool backs off, and gives up after
// start_retries), which is another test's subject.
func TestChaosKillWorkers(t *testing.T) {
	sc := chaosParams()
	e := newEnv(t)
	const size = 4
	e.write("echo.ini", echoConf(fmt.Sprintf("min_servers = %d\nmax_servers = %d\nmin_spare_servers = 1\nmax_spare_servers = 3\nstart_seconds = 10ms\nmax_requests = 0\n", size, size)))
	m := e.start()
	addr := m.addr("echo")
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready workers", 15*time.Second, func() bool { return len(c.ready("echo", nil)) == size })

	l := startLoad(addr, 16)
	k := killLoop(t, m, c, "echo", size, sc.killRate, sc.killFor)
	ok, failed := l.halt()

	select {
	case <-m.exited:
		t.Fatalf("the master exited: %v", m.err)
	default:
	}
	if d := c.status().daemon("echo"); d == nil || d.State != "running" {
		t.Fatalf("echo after the kills: %+v", d)
	}
	echo(t, addr, "still serving")
	if n := strings.Count(e.log(), "nsfd.echo: worker failed to start"); n > 0 {
		t.Errorf("%d kills were counted as failed starts (start_seconds = 10ms; only ready workers were killed)", n)
	}

	chaosReport(t, "kill workers", sc,
		fig("kills (a ready worker every "+sc.killRate.String()+" for "+sc.killFor.String()+")", strconv.Itoa(k.kills), "", ""),
		fig("ticks without a ready worker to kill", strconv.Itoa(k.skipped), "", ""),
		fig("kill → replacement started (pool back to size), median / p99 / max", k.spawn.String(),
			fmt.Sprintf("≤ 100 ms each (%.1f%% were)", 100*k.spawn.within(100*time.Millisecond)), metMissed(k.spawn.max <= 100*time.Millisecond)),
		fig("kill → replacement ready, median / p99 / max", k.ready.String(), "", ""),
		fig("in the master: exit handled → replacement started (log times)", summarize(exitToSpawn(e.log(), "echo")).String(), "", ""),
		fig("requests ok / failed", fmt.Sprintf("%d / %d", ok, failed), "failed ≤ kills", metMissed(failed <= int64(k.kills))),
	)
	if k.kills < 10 {
		t.Errorf("only %d kills in %v", k.kills, sc.killFor)
	}
	if failed > int64(k.kills) {
		t.Errorf("%d requests failed for %d kills; each kill may fail at most the one connection its worker held: %v", failed, k.kills, l.errs)
	}
	if ok == 0 {
		t.Error("no request succeeded")
	}
	k.check(t)
}

// killStats is what killLoop measured.
type killStats struct {
	kills, skipped int
	spawn, ready   durations // from each kill to the pool's next replacement started / ready
}

// check asserts generous bounds: the figures say how the targets fare, the
// test only that nothing is badly wrong. The race detector slows the master
// and its exec shim (the same binary) several times over.
func (k killStats) check(t *testing.T) {
	t.Helper()
	median, worst := 250*time.Millisecond, 2*time.Second
	if raceEnabled {
		median, worst = time.Second, 5*time.Second
	}
	if k.spawn.median > median || k.spawn.max > worst {
		t.Errorf("kill → replacement started: %v; want a median ≤ %v and none over %v", k.spawn, median, worst)
	}
	if k.ready.median > 2*median || k.ready.max > 2*worst {
		t.Errorf("kill → replacement ready: %v; want a median ≤ %v and none over %v", k.ready, 2*median, 2*worst)
	}
}

// killLoop SIGKILLs a random ready worker of daemon every rate for d, then
// waits for the pool to be back to size ready workers. A watcher notes when
// each new child of the master appears (polling /proc every millisecond)
// and when it is first ready (polling the status every 4 ms, so a ready
// time is late by up to that); each kill, in order, is matched with the
// first replacement started (and ready) after it not matched yet.
func killLoop(t *testing.T, m *master, c *chaosCtl, daemon string, size int, rate, d time.Duration) killStats {
	t.Helper()
	w := watchPool(c, m.cmd.Process.Pid, daemon)
	defer w.close()
	var k killStats
	killed := map[int]bool{}
	var at []time.Time
	tick := time.NewTicker(rate)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); {
		select {
		case <-m.exited:
			t.Fatalf("the master exited after %d kills: %v", k.kills, m.err)
		case <-tick.C:
		}
		var cands []int
		for _, pid := range w.readyNow() {
			if !killed[pid] {
				cands = append(cands, pid)
			}
		}
		if len(cands) == 0 {
			k.skipped++
			continue
		}
		victim := cands[rand.IntN(len(cands))]
		at = append(at, time.Now())
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", victim, err)
		}
		killed[victim] = true
		k.kills++
	}
	var spawned, ready []time.Time
	waitFor(t, "every killed worker replaced and the pool ready", 15*time.Second, func() bool {
		spawned, ready = w.times()
		return len(spawned) >= k.kills && len(ready) >= k.kills && len(c.ready(daemon, killed)) == size
	})
	if len(spawned) != k.kills {
		// With a fixed-size pool and max_requests = 0, only kills start workers.
		t.Errorf("%d workers started for %d kills", len(spawned), k.kills)
	}
	k.spawn, k.ready = summarize(follow(at, spawned)), summarize(follow(at, ready))
	return k
}

// follow matches each event of at, in order, with the first event of then
// after it not matched yet, and returns the delays.
func follow(at, then []time.Time) []time.Duration {
	var out []time.Duration
	j := 0
	for _, t0 := range at {
		for j < len(then) && then[j].Before(t0) {
			j++
		}
		if j == len(then) {
			break
		}
		out = append(out, then[j].Sub(t0))
		j++
	}
	return out
}

// exitToSpawn reads, from the central log, how long the master took from
// handling each unexpected exit of a daemon's worker to having started its
// replacement: its own part of a replacement, without the kernel's and the
// scheduler's.
func exitToSpawn(log, daemon string) []time.Duration {
	var out []time.Duration
	var exited time.Time
	for _, line := range strings.Split(log, "\n") {
		ts, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch {
		case strings.Contains(rest, "nsfd."+daemon+": worker exited unexpectedly"):
			exited, _ = time.Parse(logging.TimeLayout, ts)
		case strings.Contains(rest, "nsfd."+daemon+": worker started") && !exited.IsZero():
			if t, err := time.Parse(logging.TimeLayout, ts); err == nil {
				out = append(out, t.Sub(exited))
			}
			exited = time.Time{}
		}
	}
	return out
}

// poolWatch notes when each new child of the master appeared and when it
// was first seen ready in the status.
type poolWatch struct {
	c      *chaosCtl
	daemon string
	scan   *childScan
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	spawned map[int]time.Time
	readyAt map[int]time.Time
	ready   []int // the daemon's ready workers in the last status
	members map[int]bool
}

func watchPool(c *chaosCtl, master int, daemon string) *poolWatch {
	w := &poolWatch{
		c: c, daemon: daemon, scan: newChildScan(master),
		stop: make(chan struct{}), done: make(chan struct{}),
		spawned: map[int]time.Time{}, readyAt: map[int]time.Time{}, members: map[int]bool{},
	}
	w.poll()
	go w.run()
	return w
}

func (w *poolWatch) run() {
	defer close(w.done)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-w.stop:
			return
		case now := <-tick.C:
			w.mu.Lock()
			for _, pid := range w.scan.fresh() {
				w.spawned[pid] = time.Now()
			}
			w.mu.Unlock()
			if now.Sub(last) >= 4*time.Millisecond {
				last = now
				w.poll()
			}
		}
	}
}

// poll reads the status once.
func (w *poolWatch) poll() {
	st, err := w.c.tryStatus()
	if err != nil {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = w.ready[:0]
	if d := st.daemon(w.daemon); d != nil {
		for _, wk := range d.Workers {
			w.members[wk.PID] = true
			if wk.State == "idle" || wk.State == "busy" {
				w.ready = append(w.ready, wk.PID)
				if _, ok := w.readyAt[wk.PID]; !ok {
					w.readyAt[wk.PID] = now
				}
			}
		}
	}
}

func (w *poolWatch) readyNow() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ready)
}

// times returns, in order, when the daemon's new workers started and when
// they were first seen ready.
func (w *poolWatch) times() (spawned, ready []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for pid, t := range w.spawned {
		if !w.members[pid] {
			continue // not (yet) in the daemon's status: not one of its workers
		}
		spawned = append(spawned, t)
		if r, ok := w.readyAt[pid]; ok {
			ready = append(ready, r)
		}
	}
	slices.SortFunc(spawned, time.Time.Compare)
	slices.SortFunc(ready, time.Time.Compare)
	return spawned, ready
}

func (w *poolWatch) close() {
	close(w.stop)
	<-w.done
}

// TestChaosRollingReloads applies a long series of configuration changes
// under load, of three kinds in turn: an [env] change (the workers roll onto
// it), a pool-size change (applied in place), and `nsfd restart` (a roll
// without a change). Each change is applied before the next is made, but the
// rolls are not waited for: they overlap. No request may fail.
func TestChaosRollingReloads(t *testing.T) {
	sc := chaosParams()
	e := newEnv(t)
	conf := func(gen, minServers int) string {
		return echoConf(fmt.Sprintf("min_servers = %d\nmin_spare_servers = 1\nmax_spare_servers = 3\nmax_servers = 12\ngraceful_timeout = 5s\nstart_seconds = 10ms\n[env]\nGENERATION = %d\n", minServers, gen))
	}
	gen, minServers := 0, 4
	e.write("echo.ini", conf(gen, minServers))
	m := e.start()
	addr := m.addr("echo")
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready workers", 15*time.Second, func() bool { return len(c.ready("echo", nil)) == 4 })

	l := startLoad(addr, 16)
	start := time.Now()
	var rolls, resizes, restarts int
	var applied []time.Duration
	var lastRestart map[int]bool // the workers the last `nsfd restart` rolled
	peak := 0
	for i := 1; i <= sc.reloads; i++ {
		select {
		case <-m.exited:
			t.Fatalf("the master exited at change %d: %v", i, m.err)
		default:
		}
		t0 := time.Now()
		switch i % 4 {
		case 1, 3: // a roll
			gen++
			rolls++
			before := c.status().Reloads
			chaosWriteFile(t, e, "echo.ini", conf(gen, minServers))
			waitFor(t, "reload "+strconv.Itoa(i), 10*time.Second, func() bool { return c.status().Reloads > before })
		case 2: // pool size, in place
			minServers = 10 - minServers // 4 <-> 6
			resizes++
			before := c.status().Reloads
			chaosWriteFile(t, e, "echo.ini", conf(gen, minServers))
			waitFor(t, "reload "+strconv.Itoa(i), 10*time.Second, func() bool { return c.status().Reloads > before })
		case 0:
			restarts++
			lastRestart = c.pids("echo")
			if out, errOut, code := e.nsfd("restart", "echo"); code != 0 {
				t.Fatalf("nsfd restart: %d %s %s", code, out, errOut)
			}
		}
		applied = append(applied, time.Since(t0))
		peak = max(peak, len(m.workers("echo")))
	}
	// The last change settles: every worker runs the last generation, none
	// is one the last restart rolled, and there are as many as asked.
	want := "GENERATION=" + strconv.Itoa(gen)
	var settled time.Duration
	waitFor(t, "the last roll to finish", 30*time.Second, func() bool {
		ws := m.workers("echo")
		if len(ws) < minServers {
			return false
		}
		for _, pid := range ws {
			if !slices.Contains(procEnviron(pid), want) || !alive(pid) || lastRestart[pid] {
				return false
			}
		}
		settled = time.Since(start)
		return len(c.ready("echo", nil)) >= minServers
	})
	ok, failed := l.halt()

	// Every file change was one reload: a roll or an in-place resize, without errors.
	var logRolled, logResized, logErrors int
	waitFor(t, "every reload in the log", 10*time.Second, func() bool {
		logRolled, logResized, logErrors = 0, 0, 0
		for _, line := range strings.Split(e.log(), "\n") {
			if !strings.Contains(line, "nsfd: reloaded") {
				continue
			}
			if strings.Contains(line, `rolled=["echo"]`) {
				logRolled++
			}
			if strings.Contains(line, `resized=["echo"]`) {
				logResized++
			}
			if !strings.Contains(line, "errors=0") {
				logErrors++
			}
		}
		return logRolled+logResized >= rolls+resizes
	})
	ap := summarize(applied)
	chaosReport(t, "rolling reloads", sc,
		fig("changes: env rolls / in-place resizes / nsfd restart", fmt.Sprintf("%d / %d / %d", rolls, resizes, restarts), "", ""),
		fig("change → applied, median / p99 / max", ap.String(), "", ""),
		fig("first change → last roll finished", settled.Round(time.Millisecond).String(), "", ""),
		fig("most worker processes seen (draining ones included)", strconv.Itoa(peak), "", ""),
		fig("requests ok / failed", fmt.Sprintf("%d / %d", ok, failed), "0 failed", metMissed(failed == 0)),
	)
	if logRolled != rolls || logResized != resizes || logErrors != 0 {
		t.Errorf("the log shows %d rolls, %d resizes and %d reloads with errors; want %d, %d and 0", logRolled, logResized, logErrors, rolls, resizes)
	}
	if failed > 0 {
		t.Errorf("%d requests failed, want 0: %v", failed, l.errs)
	}
	if ok == 0 {
		t.Error("no request succeeded")
	}
}

// TestChaosMasterKilled kills the master with -9 under load and starts it
// again on the same fixed port: no worker outlives it by more than a second
// (they have a parent-death signal), nothing holds the old listening socket,
// the new master rebinds the port and replaces the registry rows, and the
// clients of the old master are served by the new one.
func TestChaosMasterKilled(t *testing.T) {
	sc := chaosParams()
	e := newEnv(t)
	// A port held for the test: between the kill and the new master, a
	// freed one could be given to another test process.
	addr := testport.Reserve(t)
	e.setRegistry("[registry]\nheartbeat = 200ms\n")
	e.write("echo.ini", "command = "+filepath.Join(binDir, "echo")+"\nport = "+addr+"\ntype = notify\n"+
		"min_servers = 4\nmax_servers = 8\nmin_spare_servers = 1\nmax_spare_servers = 3\nstart_seconds = 10ms\n")
	m := e.start()
	if got := m.addr("echo"); got != addr {
		t.Fatalf("echo listens on %s, want %s", got, addr)
	}
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready workers", 15*time.Second, func() bool { return len(c.ready("echo", nil)) >= 4 })
	waitFor(t, "registered", 10*time.Second, func() bool { _, _, code := e.nsfd("resolve", "echo"); return code == 0 })

	l := startLoad(addr, 8)
	waitFor(t, "load running", 10*time.Second, func() bool { return l.ok.Load() >= 100 })
	old := m.workers("")
	listener := sockets(old[0])[3]
	if listener == "" {
		t.Fatalf("worker %d has no listening socket at fd 3", old[0])
	}
	failedBefore := l.failed.Load()

	t0 := time.Now()
	if err := m.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Every worker holds the listening socket, those started since old was
	// taken too: once no process holds it, none is left.
	var orphans []int
	gone := pollUntil(time.Second, time.Millisecond, func() bool {
		orphans = socketHolders(listener)
		for _, pid := range old {
			if alive(pid) && !slices.Contains(orphans, pid) {
				orphans = append(orphans, pid)
			}
		}
		return len(orphans) == 0
	})
	allGone := time.Since(t0)
	if !gone {
		t.Fatalf("processes %v (workers, or holding the listening socket %s) still alive 1s after the master was killed", orphans, listener)
	}
	<-m.exited

	t1 := time.Now()
	m2 := e.start()
	pid2 := m2.cmd.Process.Pid
	var rebound time.Duration
	waitFor(t, "the new master to serve "+addr, 15*time.Second, func() bool {
		if tryEcho(addr, "after the crash") != nil {
			return false
		}
		rebound = time.Since(t1)
		return true
	})
	gap := time.Since(t0)
	failedGap := l.failed.Load() - failedBefore

	// No stale row: once the new master has registered, every row is its own.
	var reregistered time.Duration
	waitFor(t, "the new master's rows", 15*time.Second, func() bool {
		rows := e.rows("sqlite", e.sqlite())
		for _, d := range rows {
			if d.Name == "echo" && d.MasterPID == pid2 && len(d.Endpoints) == 1 && d.Endpoints[0].Address == addr {
				reregistered = time.Since(t1)
				return true
			}
		}
		return false
	})
	for _, d := range e.rows("sqlite", e.sqlite()) {
		if d.MasterPID != pid2 {
			t.Errorf("stale registry row of master %d (new master %d): %+v", d.MasterPID, pid2, d)
		}
	}
	if out, _, code := e.nsfd("resolve", "echo"); code != 0 || out != "tcp "+addr+"\n" {
		t.Errorf("resolve echo after the restart = %q (%d), want tcp %s", out, code, addr)
	}
	if !strings.Contains(e.log(), "removed what a previous master on this node left in the registry") {
		t.Error("the clean-up of the killed master's rows is not in the log")
	}

	// The clients of the old master are served by the new one, without failures.
	okAt := l.ok.Load()
	waitFor(t, "the load to recover", 15*time.Second, func() bool { return l.ok.Load() >= okAt+50 })
	failedAfter, okAfter := l.failed.Load(), l.ok.Load()
	waitFor(t, "the load to run on the new master", 15*time.Second, func() bool { return l.ok.Load() >= okAfter+300 })
	ok, failed := l.halt()

	chaosReport(t, "kill -9 the master", sc,
		fig("kill → every old worker dead", allGone.Round(100*time.Microsecond).String(), "≤ 1 s", metMissed(allGone <= time.Second)),
		fig("start → new master serving the same port", rebound.Round(time.Millisecond).String(), "", ""),
		fig("start → registry rows replaced", reregistered.Round(time.Millisecond).String(), "", ""),
		fig("requests failed in the gap ("+gap.Round(time.Millisecond).String()+")", strconv.FormatInt(failedGap, 10), "counted", ""),
		fig("requests ok / failed after the restart", fmt.Sprintf("%d / %d", ok-okAfter, failed-failedAfter), "0 failed", metMissed(failed == failedAfter)),
	)
	if failed != failedAfter {
		t.Errorf("%d requests failed after the new master served; want 0: %v", failed-failedAfter, l.errs)
	}
}

// TestChaosLogSinkBlocked stalls the central log for real: its file is a
// FIFO whose only reader (the test) stops reading, so once the pipe is full
// the sink's writer goroutine is stuck in write(2). A worker then floods
// its stdout to fill the sink's buffer too. Meanwhile workers are killed:
// they are replaced as fast as ever, the control socket answers, and the
// load is served. Once the reader reads again, the log says how many lines
// were dropped.
func TestChaosLogSinkBlocked(t *testing.T) {
	sc := chaosParams()
	e := newEnv(t)
	fifo := filepath.Join(e.dir, "var", "log", "central.fifo")
	flag := filepath.Join(e.dir, "flood")
	tap := newFIFOTap(t, fifo, e.logFile()) // before start: its cleanup runs after the master's
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/central.fifo\nlevel = debug\n")
	e.write("echo.ini", echoConf("min_servers = 4\nmax_servers = 4\nmin_spare_servers = 1\nmax_spare_servers = 3\nstart_seconds = 10ms\nmax_requests = 0\n"))
	// seq writes 30000 lines, more than the sink's buffer of 16384 records.
	e.write("flood.ini", "command = /bin/sh -c \"test -e "+flag+" && seq 30000; exec sleep 1000\"\nport = 127.0.0.1:0\nstart_seconds = 10ms\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	t.Cleanup(tap.resume) // a failed test must not leave the master's log stuck while it stops
	addr := m.addr("echo")
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready echo workers and a flood worker", 15*time.Second, func() bool {
		return len(c.ready("echo", nil)) == 4 && len(c.ready("flood", nil)) == 1
	})
	if d := c.metric("nsfd_log_lines_dropped_total"); d != 0 {
		t.Fatalf("%v log lines dropped before the sink was stalled", d)
	}
	// Before: how fast replacements are with the log flowing, under the same load.
	l := startLoad(addr, 8)
	before := killLoop(t, m, c, "echo", 4, 100*time.Millisecond, sc.logBlock*3/5)

	tap.pause()
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	flooder := c.ready("flood", nil)[0]
	syscall.Kill(flooder, syscall.SIGKILL) // its replacement floods
	waitFor(t, "the pipe to fill and the sink to drop lines", 20*time.Second, func() bool {
		return tap.full() && c.metric("nsfd_log_lines_dropped_total") > 0
	})
	stalled := time.Now()
	failedBefore := l.failed.Load()

	// Supervision while the sink is stuck.
	during := killLoop(t, m, c, "echo", 4, 100*time.Millisecond, sc.logBlock)
	t0 := time.Now()
	c.status()
	statusTook := time.Since(t0)
	if !tap.full() {
		t.Fatal("the pipe drained while nobody read it: the sink was not stalled")
	}
	stalledFor := time.Since(stalled)
	dropped := c.metric("nsfd_log_lines_dropped_total")
	_, failed := l.halt()
	failed -= failedBefore

	tap.resume()
	resumed := time.Now()
	dropRE := regexp.MustCompile(`(\d+) log lines dropped`)
	var reported string
	waitFor(t, "the dropped lines to be reported", 30*time.Second, func() bool {
		mm := dropRE.FindStringSubmatch(e.log())
		if mm == nil {
			return false
		}
		reported = mm[1]
		return true
	})
	drained := time.Since(resumed)
	// The log flows again: a kill after the stall is in it.
	victim := c.ready("echo", nil)[0]
	syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, "a record after the stall", 15*time.Second, func() bool {
		return strings.Contains(e.log(), "worker exited unexpectedly; replacing it: pid="+strconv.Itoa(victim))
	})

	chaosReport(t, "log sink stalled", sc,
		fig("sink stalled (pipe full, lines dropping)", stalledFor.Round(time.Millisecond).String(), "≥ "+sc.logBlock.String(), ""),
		fig("kill → replacement started, log flowing: median / p99 / max", before.spawn.String(), "", ""),
		fig("kill → replacement started, sink stalled: median / p99 / max", during.spawn.String(), "unaffected", ""),
		fig("kill → replacement ready, log flowing: median / p99 / max", before.ready.String(), "", ""),
		fig("kill → replacement ready, sink stalled: median / p99 / max", during.ready.String(), "unaffected", ""),
		fig("control-socket status at the end of the stall", statusTook.Round(100*time.Microsecond).String(), "", ""),
		fig("lines dropped (metric while stalled / first report)", fmt.Sprintf("%v / %s", dropped, reported), "counted", ""),
		fig("resume → drop report in the log", drained.Round(time.Millisecond).String(), "", ""),
		fig("requests failed / kills while stalled", fmt.Sprintf("%d / %d", failed, during.kills), "failed ≤ kills", metMissed(failed <= int64(during.kills))),
	)
	during.check(t)
	if statusTook > 3*time.Second {
		t.Errorf("the control socket took %v to answer while the sink was stalled", statusTook)
	}
	if failed > int64(during.kills) {
		t.Errorf("%d requests failed for %d kills: %v", failed, during.kills, l.errs)
	}
}

// TestChaosPostgresRestart stops the PostgreSQL registry under load and
// starts it again: the daemons keep serving without a failed request, a
// rolling restart and a new daemon need no registry, and once it is back
// every daemon resolves again, the new one included.
func TestChaosPostgresRestart(t *testing.T) {
	sc := chaosParams()
	srv := pgtest.New(t) // its own cluster: this test stops it
	e := newEnv(t)
	e.setRegistry("[registry]\ntype = postgres\ndsn = " + srv.DSN() + "\nheartbeat = 200ms\n")
	e.write("echo.ini", echoConf("min_servers = 4\nmax_servers = 8\nmin_spare_servers = 1\nmax_spare_servers = 3\nstart_seconds = 10ms\n"))
	m := e.start()
	addr := m.addr("echo")
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready workers", 15*time.Second, func() bool { return len(c.ready("echo", nil)) >= 4 })
	waitFor(t, "registered", 10*time.Second, func() bool { _, _, code := e.nsfd("resolve", "echo"); return code == 0 })

	l := startLoad(addr, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	down := time.Now()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failure in the log", 15*time.Second, func() bool { return strings.Contains(e.log(), "registry unreachable") })

	// While it is down: a rolling restart, and a new daemon.
	before := c.pids("echo")
	if out, errOut, code := e.nsfd("restart", "echo"); code != 0 {
		t.Fatalf("nsfd restart: %d %s %s", code, out, errOut)
	}
	waitFor(t, "the restart to roll every worker", 20*time.Second, func() bool {
		now := c.ready("echo", before)
		return len(now) >= 4 && len(c.pids("echo")) == len(now)
	})
	chaosWriteFile(t, e, "late.ini", echoConf("min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n"))
	var lateAddr string
	waitFor(t, "the new daemon to serve", 15*time.Second, func() bool {
		d := c.status().daemon("late")
		if d == nil || d.State != "running" || len(d.Listeners) == 0 {
			return false
		}
		lateAddr = strings.Fields(d.Listeners[0])[1]
		return tryEcho(lateAddr, "registry down") == nil
	})

	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now() // PostgreSQL accepts connections
	outage := up.Sub(down)
	var back time.Duration
	waitFor(t, "both daemons to resolve again", 30*time.Second, func() bool {
		a, _, ca := e.nsfd("resolve", "echo")
		b, _, cb := e.nsfd("resolve", "late")
		back = time.Since(up)
		return ca == 0 && cb == 0 && a == "tcp "+addr+"\n" && b == "tcp "+lateAddr+"\n"
	})
	ok, failed := l.halt()
	for _, d := range e.rows("postgres", srv.DSN()) {
		if d.MasterPID != m.cmd.Process.Pid {
			t.Errorf("registry row of another master: %+v", d)
		}
	}
	if !strings.Contains(e.log(), "registry reachable again") {
		t.Error("recovery not logged")
	}
	chaosReport(t, "PostgreSQL registry restarted", sc,
		fig("registry down (a rolling restart and a new daemon meanwhile)", outage.Round(time.Millisecond).String(), "", ""),
		fig("PostgreSQL accepting again → every daemon resolves (`nsfd resolve`)", back.Round(time.Millisecond).String(), "", ""),
		fig("requests ok / failed", fmt.Sprintf("%d / %d", ok, failed), "0 failed", metMissed(failed == 0)),
	)
	if failed > 0 {
		t.Errorf("%d requests failed, want 0: %v", failed, l.errs)
	}
	if ok == 0 {
		t.Error("no request succeeded")
	}
}

// halt stops the load and returns its counts, asserting nothing.
func (l *load) halt() (ok, failed int64) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

// pollUntil checks cond every interval until it holds or d has passed,
// and reports whether it held.
func pollUntil(d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// chaosCtl talks to a master's control socket over one kept-alive
// connection: cheap enough to poll every few milliseconds.
type chaosCtl struct {
	t testing.TB
	c *http.Client
}

func newChaosCtl(t testing.TB, e *env) *chaosCtl {
	t.Helper()
	e.waitReady()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(e.dir, "var/run/nsfd.sock"))
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &chaosCtl{t: t, c: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

// tryGet may be called from any goroutine.
func (c *chaosCtl) tryGet(path string) ([]byte, error) {
	resp, err := c.c.Get("http://nsfd" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, err
}

func (c *chaosCtl) get(path string) []byte {
	c.t.Helper()
	b, err := c.tryGet(path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return b
}

// tryStatus may be called from any goroutine.
func (c *chaosCtl) tryStatus() (statusJSON, error) {
	var st statusJSON
	b, err := c.tryGet("/v1/status")
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	return st, err
}

func (c *chaosCtl) status() statusJSON {
	c.t.Helper()
	st, err := c.tryStatus()
	if err != nil {
		c.t.Fatalf("status: %v", err)
	}
	return st
}

// ready returns the pids of a daemon's ready workers (idle or busy), leaving
// out those in skip.
func (c *chaosCtl) ready(name string, skip map[int]bool) []int {
	c.t.Helper()
	var pids []int
	if d := c.status().daemon(name); d != nil {
		for _, w := range d.Workers {
			if (w.State == "idle" || w.State == "busy") && !skip[w.PID] {
				pids = append(pids, w.PID)
			}
		}
	}
	return pids
}

func (c *chaosCtl) pids(name string) map[int]bool {
	c.t.Helper()
	out := map[int]bool{}
	if d := c.status().daemon(name); d != nil {
		for _, w := range d.Workers {
			out[w.PID] = true
		}
	}
	return out
}

// metric returns the value of an unlabelled metric from /metrics.
func (c *chaosCtl) metric(name string) float64 {
	c.t.Helper()
	for _, line := range strings.Split(string(c.get("/metrics")), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				c.t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	c.t.Fatalf("no metric %s", name)
	return 0
}

// childScan finds a process's new children by scanning /proc; it reads the
// stat file of pids it has not seen before only, so a scan is cheap.
type childScan struct {
	parent int
	seen   map[int]bool
}

func newChildScan(parent int) *childScan {
	s := &childScan{parent: parent, seen: map[int]bool{}}
	s.fresh()
	return s
}

// fresh returns the children started since the last call.
func (s *childScan) fresh() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var out []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || s.seen[pid] {
			continue
		}
		ppid, _ := procStat(pid)
		if ppid < 0 {
			continue // gone already; a new pid anyway if it comes back
		}
		s.seen[pid] = true
		if ppid == s.parent && !isKeeper(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// procEnviron returns a process's environment.
func procEnviron(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return strings.Split(string(b), "\x00")
}

// socketHolders returns the pids of the processes holding socket (as
// "socket:[inode]") open.
func socketHolders(socket string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || !alive(pid) {
			continue
		}
		for _, s := range sockets(pid) {
			if s == socket {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// chaosWriteFile replaces a file in etc/ at once, the way an editor's
// atomic save does, so the watcher never sees it half written.
func chaosWriteFile(t testing.TB, e *env, name, content string) {
	t.Helper()
	tmp := filepath.Join(e.etc, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.etc, name)); err != nil {
		t.Fatal(err)
	}
}

// fifoTap is the only reader of the FIFO the master logs into: it copies
// what it reads to a regular file (where env.log finds it), and stops
// reading on pause, so that the master's writes block once the pipe is full.
type fifoTap struct {
	f    *os.File // opened read-write: the master's open for writing never waits, and reads never see EOF
	out  *os.File
	mu   sync.Mutex
	gate chan struct{} // closed while reading is allowed
	done chan struct{}
}

func newFIFOTap(t testing.TB, fifo, out string) *fifoTap {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(fifo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	o, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	tap := &fifoTap{f: f, out: o, gate: make(chan struct{}), done: make(chan struct{})}
	close(tap.gate)
	go tap.run()
	t.Cleanup(func() {
		tap.resume()
		f.Close() // ends the pending read
		<-tap.done
		o.Close()
	})
	return tap
}

func (tap *fifoTap) run() {
	defer close(tap.done)
	buf := make([]byte, 64<<10)
	for {
		tap.mu.Lock()
		gate := tap.gate
		tap.mu.Unlock()
		<-gate
		n, err := tap.f.Read(buf)
		tap.out.Write(buf[:n])
		if err != nil {
			return
		}
	}
}

// pause stops reading after the read in progress, if any.
func (tap *fifoTap) pause() {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	select {
	case <-tap.gate:
		tap.gate = make(chan struct{})
	default:
	}
}

func (tap *fifoTap) resume() {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	select {
	case <-tap.gate:
	default:
		close(tap.gate)
	}
}

// full reports whether the pipe has no room left: the master's next write
// blocks. Counting the bytes queued would not tell: a write that does not
// fit in the last page of the pipe starts a new one, so a pipe whose every
// page is taken can hold well under its size in bytes. poll(2) asks the
// kernel the question itself: the tap's descriptor is open for writing too,
// and a pipe is writable while it has a free page.
func (tap *fifoTap) full() bool {
	rc, err := tap.f.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var perr error
	fds := []unix.PollFd{{Events: unix.POLLOUT}}
	rc.Control(func(fd uintptr) {
		fds[0].Fd = int32(fd)
		n, perr = unix.Poll(fds, 0)
	})
	return perr == nil && (n == 0 || fds[0].Revents&unix.POLLOUT == 0)
}

// durations summarizes a sample of latencies.
type durations struct {
	n                int
	median, p99, max time.Duration
	sorted           []time.Duration
}

func summarize(ds []time.Duration) durations {
	if len(ds) == 0 {
		return durations{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return durations{n: len(s), median: at(0.5), p99: at(0.99), max: s[len(s)-1], sorted: s}
}

// within returns the fraction of the sample at most limit.
func (d durations) within(limit time.Duration) float64 {
	if d.n == 0 {
		return 0
	}
	i, _ := slices.BinarySearch(d.sorted, limit+1)
	return float64(i) / float64(d.n)
}

func (d durations) String() string {
	r := func(x time.Duration) string { return fmt.Sprintf("%.1f", float64(x)/float64(time.Millisecond)) }
	return fmt.Sprintf("%s / %s / %s ms (n=%d)", r(d.median), r(d.p99), r(d.max), d.n)
}

// chaosFigure is one measured row of the report.
type chaosFigure struct {
	Scenario string `json:"scenario"`
	Measure  string `json:"measure"`
	Value    string `json:"value"`
	Target   string `json:"target,omitempty"`
	Verdict  string `json:"verdict,omitempty"` // "met" or "missed", where a target is measurable
}

func fig(measure, value, target, verdict string) chaosFigure {
	return chaosFigure{Measure: measure, Value: value, Target: target, Verdict: verdict}
}

func metMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

var chaosFigures struct {
	mu   sync.Mutex
	rows []chaosFigure
}

// chaosReport logs a scenario's figures as a table and, with
// NSFD_CHAOS_REPORT set, rewrites that file with every figure of the run.
func chaosReport(t *testing.T, scenario string, sc chaosScale, figs ...chaosFigure) {
	t.Helper()
	for i := range figs {
		figs[i].Scenario = scenario
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s form, race-built master: %v)\n", scenario, sc.mode(), raceEnabled)
	writeChaosTable(&b, figs)
	t.Log(b.String())

	chaosFigures.mu.Lock()
	defer chaosFigures.mu.Unlock()
	chaosFigures.rows = append(chaosFigures.rows, figs...)
	path := os.Getenv("NSFD_CHAOS_REPORT")
	if path == "" {
		return
	}
	var out []byte
	if strings.HasSuffix(path, ".md") {
		var md strings.Builder
		fmt.Fprintf(&md, "Fault injection, %s form (`go test -run Chaos ./cmd/nsfd`%s), race-built master: %v, %s.\n\n",
			sc.mode(), map[bool]string{true: " with `-tags chaos`", false: ""}[sc.long], raceEnabled, time.Now().UTC().Format(time.DateOnly))
		writeChaosTable(&md, chaosFigures.rows)
		out = []byte(md.String())
	} else {
		var err error
		out, err = json.MarshalIndent(map[string]any{
			"mode": sc.mode(), "race": raceEnabled, "date": time.Now().UTC().Format(time.RFC3339), "figures": chaosFigures.rows,
		}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, '\n')
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Errorf("NSFD_CHAOS_REPORT: %v", err)
	}
}

// writeChaosTable writes figs as a markdown table.
func writeChaosTable(b *strings.Builder, figs []chaosFigure) {
	b.WriteString("| Scenario | Measure | Value | Target |\n|---|---|---|---|\n")
	for _, f := range figs {
		target := f.Target
		if f.Verdict != "" {
			target += " (" + f.Verdict + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", f.Scenario, f.Measure, f.Value, target)
	}
}
