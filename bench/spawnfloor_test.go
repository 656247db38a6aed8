package bench

// The posix_spawn floor (issue 18): bench/spawnfloor/spawnfloor.c, built
// with gcc at run time, posix_spawns the same `sleep` processes nsfd and
// supervisord start, and nothing else. The benchmark starts and watches it
// as it does the two masters (bringUp: from its exec until every child has
// exec'd `sleep`), in the same rounds as their start of the big fleet.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sideFloor is the floor's index in the per-side arrays that include it
// (svComparison.spawn): past the two masters, which the kills, drops and
// idle figures are about.
const (
	sideFloor = nSides + iota
	nSpawnSides
)

// sideName names a side, the floor included.
func sideName(side int) string {
	if side == sideFloor {
		return "posix_spawn floor"
	}
	return sideNames[side]
}

var _ fleetMaster = (*floorMaster)(nil)

// buildC compiles bench/NAME/NAME.c with gcc -O2 into a temporary
// directory of tb and returns the binary's path, and gcc's version for the
// report.
func buildC(tb testing.TB, name string) (bin, version string, err error) {
	tb.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "", fmt.Errorf("no gcc to build bench/%s (Debian: apt-get install gcc): %w", name, err)
	}
	bin = filepath.Join(tb.TempDir(), name)
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-o", bin, filepath.Join(name, name+".c")).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("gcc %s.c: %w\n%s", name, err, out)
	}
	if out, err := exec.Command(gcc, "--version").Output(); err == nil {
		version, _, _ = strings.Cut(string(out), "\n")
	}
	return bin, version, nil
}

// floorOutput is the line spawnfloor writes when it is stopped.
type floorOutput struct {
	spawned  int
	loop     time.Duration // main → the last posix_spawn returned
	selfCPU  time.Duration // its own CPU at that point (getrusage)
	children time.Duration // its children's whole CPU, reaped after it was stopped, replacements included
	respawn  int           // replacements it spawned for children that died
}

// floorMaster is a running `spawnfloor N SLEEP 100000`.
type floorMaster struct {
	dir    string
	cmd    *exec.Cmd
	t0     time.Time
	pidNS  bool
	exited chan struct{}
	out    floorOutput // once stopped
	outErr error
}

func floorSystem(bin, sleep string) *system {
	return &system{
		side: sideFloor,
		start: func(tb testing.TB, programs, per int) fleetMaster {
			return startFloor(tb, bin, sleep, programs*per)
		},
		add:     func(fleetMaster, string) (time.Duration, error) { return 0, fmt.Errorf("the floor adds no programs") },
		program: func(int) string { return "" },
	}
}

// startFloor starts spawnfloor on n `sleep` processes, isolated as the
// masters are (startIsolated). It is stopped when tb ends.
func startFloor(tb testing.TB, bin, sleep string, n int) *floorMaster {
	tb.Helper()
	dir, err := os.MkdirTemp("", "floor")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	out, err := os.Create(filepath.Join(dir, "floor.out"))
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	f := &floorMaster{dir: dir, exited: make(chan struct{})}
	f.t0 = time.Now()
	f.cmd, f.pidNS, err = startIsolated(func() *exec.Cmd {
		cmd := exec.Command(bin, strconv.Itoa(n), sleep, sleepSeconds)
		cmd.Stdout, cmd.Stderr = out, out
		return cmd
	})
	if err != nil {
		tb.Fatal(err)
	}
	go func() { f.cmd.Wait(); close(f.exited) }()
	tb.Cleanup(func() {
		if err := f.stop(time.Minute); err != nil {
			tb.Error(err)
		}
	})
	return f
}

func (f *floorMaster) pid() int           { return f.cmd.Process.Pid }
func (f *floorMaster) started() time.Time { return f.t0 }

func (f *floorMaster) running() bool {
	select {
	case <-f.exited:
		return false
	default:
		return true
	}
}

func (f *floorMaster) diagnostics() string {
	out, _ := os.ReadFile(filepath.Join(f.dir, "floor.out"))
	return fmt.Sprintf("spawnfloor output:\n%s", out)
}

// stop sends SIGTERM, on which spawnfloor writes its line and kills and
// reaps its children, and reads the line.
func (f *floorMaster) stop(timeout time.Duration) error {
	if !f.running() {
		return nil
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(timeout):
		f.cmd.Process.Kill()
		<-f.exited
		return fmt.Errorf("spawnfloor did not exit within %v of SIGTERM; killed", timeout)
	}
	f.out, f.outErr = parseFloor(filepath.Join(f.dir, "floor.out"))
	return nil
}

// parseFloor reads spawnfloor's key=value line.
func parseFloor(path string) (floorOutput, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return floorOutput{}, err
	}
	var o floorOutput
	var loop, self, kids int64
	for line := range strings.SplitSeq(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "spawned=%d loop_ns=%d self_cpu_ns=%d children_cpu_ns=%d respawned=%d", &o.spawned, &loop, &self, &kids, &o.respawn); err == nil {
			o.loop, o.selfCPU, o.children = time.Duration(loop), time.Duration(self), time.Duration(kids)
			return o, nil
		}
	}
	return o, fmt.Errorf("spawnfloor: no result line in %q", b)
}

// startRun is one start of a fleet by one side.
type startRun struct {
	up        time.Duration // exec of the master → all processes running
	masterCPU time.Duration // the master's utime+stime at that point (10 ms ticks)
	childCPU  time.Duration // the processes' run time at that point, summed (their main threads)
	floor     *floorOutput  // what spawnfloor said of itself, on the floor's side
}

// perProcCPU is the CPU a process cost to start on a side: the master's
// CPU from its exec until all n ran, divided among them, plus the
// process's own CPU until then.
func (r startRun) perProcCPU(n int) time.Duration {
	return (r.masterCPU + r.childCPU) / time.Duration(max(1, n))
}

// startOnce brings sys's fleet of programs × per processes up and returns
// it with what its start cost.
func startOnce(tb testing.TB, sys *system, programs, per int) (*fleet, startRun) {
	tb.Helper()
	f, d := bringUp(tb, sys, programs, per)
	return f, startRun{up: d, masterCPU: procCPU(f.m.pid()), childCPU: f.upCPU}
}

// floorSaid records in r what spawnfloor said of itself once its fleet f
// was stopped, if f is the floor's.
func floorSaid(tb testing.TB, f *fleet, r *startRun) {
	tb.Helper()
	fm, ok := f.m.(*floorMaster)
	if !ok {
		return
	}
	if fm.running() {
		tb.Fatal("floorSaid: spawnfloor still running")
	}
	if fm.outErr != nil {
		tb.Error(fm.outErr)
		return
	}
	r.floor = &fm.out
}

// medianRuns returns the medians over runs of the start time and of the
// CPU per process.
func medianRuns(runs []startRun, n int) (up, perProc time.Duration) {
	var ups, cpus []time.Duration
	for _, r := range runs {
		ups = append(ups, r.up)
		cpus = append(cpus, r.perProcCPU(n))
	}
	return median(ups), median(cpus)
}

// Rounds of the start of the idle-size fleet (1000 processes) beyond the
// first, which measureIdle makes, and kills on nsfd's fleet of that size.
var (
	bigRounds = 3
	bigKills  = 30               // at most
	bigKillIn = 15 * time.Second // and within about this
	// floorRounds more rounds start nsfd's fleet and the floor's alone, who
	// goes first alternating: a round of these two takes seconds where
	// supervisord's takes half a minute, and their ratio, the closest to
	// its target, is the one this shared machine's noise moves most.
	floorRounds = 4
)

// startBig measures the floor's start of the idle-size fleet after the two
// masters' first (measureIdle's), and with more, further rounds of all
// three, the side going first rotating, then kills on nsfd's fleet and the
// floor's in the last round, then floorRounds of nsfd and the floor alone.
// The floor is skipped, and said why, without gcc.
func (c *svComparison) startBig(b *testing.B, sleep string, masters [nSides]*system, programs, per int, more bool) {
	b.Helper()
	n := c.idle.n
	var systems []*system
	for _, s := range masters {
		systems = append(systems, s)
	}
	bin, version, err := buildC(b, "spawnfloor")
	if err != nil {
		c.floor = err.Error()
	} else {
		c.floor = version
		systems = append(systems, floorSystem(bin, sleep))
	}
	if _, err := ensureLimits(len(systems) * n); err != nil {
		b.Skipf("cannot run %d processes here: %v", len(systems)*n, err)
	}
	// round starts the sides in order, and returns their fleets, up.
	round := func(sides []*system) []*fleet {
		var fleets []*fleet
		for _, sys := range sides {
			f, r := startOnce(b, sys, programs, per)
			if sys.side < nSides {
				c.up[n][sys.side] = append(c.up[n][sys.side], r.up)
			}
			c.spawn[sys.side] = append(c.spawn[sys.side], r)
			c.pidNS = c.pidNS && isolated(f.m)
			fleets = append(fleets, f)
		}
		return fleets
	}
	stop := func(fleets []*fleet) {
		stopFleets(b, fleets...)
		for _, f := range fleets {
			runs := c.spawn[f.sys.side]
			floorSaid(b, f, &runs[len(runs)-1])
		}
	}
	if len(systems) > nSides {
		stop(round(systems[nSides:]))
	}
	if !more {
		return
	}
	for i := 1; i < bigRounds; i++ {
		sides := slices.Concat(systems[i%len(systems):], systems[:i%len(systems)])
		fleets := round(sides)
		if i == bigRounds-1 {
			c.killBig(b, fleets)
		}
		stop(fleets)
	}
	if len(systems) > nSides {
		for i := range floorRounds {
			pair := []*system{masters[sideNsfd], systems[nSides]}
			if i%2 == 1 {
				pair[0], pair[1] = pair[1], pair[0]
			}
			stop(round(pair))
		}
	}
}

// killBig kills processes of nsfd's fleet and of the floor's among fleets,
// one of each in turn (the one going first alternating), at most bigKills
// of each or for about bigKillIn, and records the times to a replacement.
func (c *svComparison) killBig(tb testing.TB, fleets []*fleet) {
	tb.Helper()
	var ns, fl *fleet
	for _, f := range fleets {
		switch f.sys.side {
		case sideNsfd:
			ns = f
		case sideFloor:
			fl = f
		}
	}
	if ns == nil {
		return
	}
	t0 := time.Now()
	for k := range bigKills {
		if fl != nil && k%2 == 1 {
			c.bigKillFloor = append(c.bigKillFloor, fl.kill(tb))
		}
		c.bigKill = append(c.bigKill, ns.kill(tb))
		if fl != nil && k%2 == 0 {
			c.bigKillFloor = append(c.bigKillFloor, fl.kill(tb))
		}
		if time.Since(t0) > bigKillIn {
			break
		}
	}
	c.bigPoll = ns.poll
	if fl != nil {
		c.bigPollFloor = fl.poll
	}
}
