//go:build linux

package main

// Fault injection, scenario 1: ready workers SIGKILLed under load, and the
// watch that times their replacements (the two forms and the report:
// chaos_test.go).

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/logging"
)

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
