package bench

// The fleets of the supervisord comparison: a master of either side with
// the processes it manages, brought up, killed, added to and stopped; and
// the idle measurement of both masters.

import (
	"maps"
	"math/rand/v2"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// fleet is a running master of one side with the processes it manages.
type fleet struct {
	sys    *system
	m      fleetMaster
	kids   *childReader // the master's children
	n      int          // processes it should have
	live   map[int]bool // its children known to have exec'd sleep, minus those killed
	killed map[int]bool // processes the benchmark killed: until it dies, one still looks alive

	upCPU    time.Duration // CPU the processes' main threads used until all ran sleep: what each did before its exec
	scans    int           // reads of the master's children
	scanTime time.Duration // their wall time
	poll     pollCost      // the benchmark's own, while it waited for replacements
}

// pollCost is what the benchmark spent on polling a master's children while
// it waited for replacements of killed processes.
type pollCost struct {
	reads  int
	wall   time.Duration // of the reads
	cpu    time.Duration // the benchmark's CPU meanwhile
	waited time.Duration
}

// scan reads the master's children and returns those that have exec'd
// sleep since the last scan, adding them to f.live.
func (f *fleet) scan() []int {
	t0 := time.Now()
	var fresh []int
	for _, pid := range f.kids.pids() {
		if f.live[pid] || f.killed[pid] {
			continue
		}
		if p, err := readProc(pid); err == nil && p.comm == "sleep" && p.state != 'Z' {
			f.live[pid] = true
			fresh = append(fresh, pid)
		}
	}
	f.scans++
	f.scanTime += time.Since(t0)
	return fresh
}

// count returns how many of the master's children run sleep, read afresh.
func (f *fleet) count() int {
	n := 0
	for _, pid := range childPIDs(f.m.pid()) {
		if p, err := readProc(pid); err == nil && p.comm == "sleep" && p.state != 'Z' {
			n++
		}
	}
	return n
}

// bringUp starts sys's master on programs × per processes and returns once
// all have exec'd sleep, with the time from the master's exec.
func bringUp(tb testing.TB, sys *system, programs, per int) (*fleet, time.Duration) {
	tb.Helper()
	m := sys.start(tb, programs, per)
	f := &fleet{sys: sys, m: m, kids: newChildReader(m.pid()), n: programs * per, live: map[int]bool{}, killed: map[int]bool{}}
	d, ok := pollUntil(m.started(), 5*time.Minute, func() bool {
		f.scan()
		return len(f.live) >= f.n || !m.running()
	})
	if !ok || !m.running() {
		tb.Fatalf("%s: %d of %d processes running after %v\n%s", sideName(sys.side), len(f.live), f.n,
			d.Round(time.Millisecond), m.diagnostics())
	}
	for pid := range f.live {
		f.upCPU += runTime(pid)
	}
	return f, d
}

// kill SIGKILLs one of the fleet's processes, chosen at random, and returns
// the time until a new child of the master has exec'd sleep. It returns
// once the killed process has been reaped too: the fleet is whole again.
func (f *fleet) kill(tb testing.TB) time.Duration {
	tb.Helper()
	pids := slices.Sorted(maps.Keys(f.live))
	victim := pids[rand.IntN(len(pids))]
	delete(f.live, victim)
	f.killed[victim] = true
	reads, wall, cpu := f.scans, f.scanTime, selfCPU()
	t0 := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		tb.Fatalf("%s: kill %d: %v", sideName(f.sys.side), victim, err)
	}
	d, ok := pollUntil(t0, time.Minute, func() bool { return len(f.scan()) > 0 || !f.m.running() })
	if !ok || !f.m.running() {
		tb.Fatalf("%s: no replacement for killed process %d after %v\n%s", sideName(f.sys.side), victim,
			d.Round(time.Millisecond), f.m.diagnostics())
	}
	f.poll.reads += f.scans - reads
	f.poll.wall += f.scanTime - wall
	f.poll.cpu += selfCPU() - cpu
	f.poll.waited += d
	if _, ok := pollUntil(time.Now(), time.Minute, func() bool { return !slices.Contains(f.kids.pids(), victim) }); !ok {
		tb.Fatalf("%s: killed process %d not reaped after a minute", sideName(f.sys.side), victim)
	}
	if len(f.live) != f.n {
		tb.Fatalf("%s: %d processes after a kill, want %d\n%s", sideName(f.sys.side), len(f.live), f.n, f.m.diagnostics())
	}
	return d
}

// add adds a program of one process named name as the side's users do and
// returns the time until its process has exec'd sleep, and the time of the
// control command in it.
func (f *fleet) add(tb testing.TB, name string) (d, ctl time.Duration) {
	tb.Helper()
	t0 := time.Now()
	ctl, err := f.sys.add(f.m, name)
	if err != nil {
		tb.Fatalf("%s: add %s: %v", sideName(f.sys.side), name, err)
	}
	var fresh []int
	d, ok := pollUntil(t0, time.Minute, func() bool {
		fresh = f.scan()
		return len(fresh) > 0 || !f.m.running()
	})
	if !ok || !f.m.running() {
		tb.Fatalf("%s: %s not running %v after its file was dropped\n%s", sideName(f.sys.side), name,
			d.Round(time.Millisecond), f.m.diagnostics())
	}
	// Which program it is (untimed): comm changes early in execve, the
	// environment shows a moment later.
	var got string
	pollUntil(time.Now(), 5*time.Second, func() bool { got = f.sys.program(fresh[0]); return got != "" })
	if len(fresh) != 1 || got != name {
		tb.Fatalf("%s: after dropping %s, new processes %v of %q", sideName(f.sys.side), name, fresh, got)
	}
	f.n++
	return d, ctl
}

// stopFleets stops the fleets' masters at once.
func stopFleets(tb testing.TB, fleets ...*fleet) {
	tb.Helper()
	errs := make(chan error, len(fleets))
	for _, f := range fleets {
		f.kids.close()
		go func() { errs <- f.m.stop(time.Minute) }()
	}
	for range fleets {
		if err := <-errs; err != nil {
			tb.Error(err)
		}
	}
}

// idleRun is the idle part of the comparison: each master with one process,
// then with the whole fleet, and its RSS and CPU over an idle window.
// BenchmarkMasterOverhead reports nsfd's side of it.
type idleRun struct {
	n     int
	sides [nSides]*overhead // sides[sideSv] is nil when supervisord did not run
	pidNS bool              // every master ran in its own PID namespace
}

var idleResult *idleRun

// idleFleet returns the size of the idle fleets: -bench.idle-daemons
// programs of -bench.idle-workers processes, 100 processes in all under
// -bench.quick.
func idleFleet() (programs, per int) {
	return *flagDaemons, quick(*flagIdle, max(1, 100 / *flagDaemons))
}

// measureIdle starts nsfd's master, and supervisord if sv is not nil, with
// one process each, then with -bench.idle-daemons × -bench.idle-workers
// processes (100 under -bench.quick), and measures them. With keep, it
// leaves the big fleets running and returns them; the caller stops them.
func measureIdle(b *testing.B, sv *svInstall, keep bool) (*idleRun, []*fleet) {
	b.Helper()
	programs, per := idleFleet()
	window := quick(*flagIdleWin, min(*flagIdleWin, 2*time.Second))
	if programs < 1 || per < 1 {
		b.Fatal("-bench.idle-daemons and -bench.idle-workers must be positive")
	}
	n := programs * per
	note, err := ensureLimits(2 * n) // both fleets run at once
	if err != nil {
		b.Skipf("cannot run %d processes here: %v", 2*n, err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skip("no sleep(1) for the idle processes:", err)
	}
	systems := []*system{nsfdSystem(sleep)}
	if sv != nil {
		systems = append(systems, svSystem(sv, sleep))
	}
	r := &idleRun{n: n, pidNS: true}

	// The baselines: each master with one program of one process, settled.
	var fleets []*fleet
	for _, sys := range systems {
		f, d := bringUp(b, sys, 1, 1)
		r.sides[sys.side] = &overhead{daemons: programs, perDaemon: per, window: window, limitNote: note, baseStartup: d}
		fleets = append(fleets, f)
	}
	time.Sleep(time.Second) // let them settle, as the big ones do in the idle window
	for _, f := range fleets {
		o := r.sides[f.sys.side]
		if o.base, err = readMem(f.m.pid()); err != nil {
			b.Fatal(err)
		}
		o.baseFDs = openFDs(f.m.pid())
	}
	stopFleets(b, fleets...)

	// The fleets, one after the other: the first idles while the second
	// starts. Then the idle window, side by side.
	fleets = fleets[:0]
	for _, sys := range systems {
		f, d := bringUp(b, sys, programs, per)
		o := r.sides[sys.side]
		o.startup, o.startupCPU, o.childCPU = d, procCPU(f.m.pid()), f.upCPU
		fleets = append(fleets, f)
	}
	cpu0 := make([]time.Duration, len(fleets))
	for i, f := range fleets {
		cpu0[i] = procCPU(f.m.pid())
	}
	time.Sleep(window) // the idle window: measure, do nothing
	for i, f := range fleets {
		o := r.sides[f.sys.side]
		o.idleCPU = procCPU(f.m.pid()) - cpu0[i]
		if o.mem, err = readMem(f.m.pid()); err != nil {
			b.Fatal(err)
		}
		o.fds = openFDs(f.m.pid())
		if o.running = f.count(); o.running != n {
			b.Errorf("%s: %d processes running after the idle window, want %d", sideName(f.sys.side), o.running, n)
		}
		r.pidNS = r.pidNS && isolated(f.m)
	}
	recordOverhead(r.sides[sideNsfd])
	if keep {
		return r, fleets
	}
	stopFleets(b, fleets...)
	return r, nil
}

// isolated reports whether m runs in its own PID namespace.
func isolated(m fleetMaster) bool {
	switch m := m.(type) {
	case *master:
		return m.pidNS
	case *svMaster:
		return m.pidNS
	case *floorMaster:
		return m.pidNS
	}
	return false
}
