package bench

// nsfd against supervisord 4.2 (issue 8, comparison 2): the same fleets of
// `sleep` processes under both masters in one run. Start-up, the restart of
// a killed process, a program added by dropping a file, and the idle
// master's memory and CPU.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nsfd/nsfd/worker"
)

// Targets of issue 8 against supervisord.
const (
	targetUpFactor   = 8                      // start-up of 1000 processes: nsfd ≤ 1/8 of supervisord's (issue 18; 1/5 in issue 8)
	targetKillFactor = 20                     // kill → replacement running, median: nsfd ≤ 1/20 of supervisord's
	targetRSSFactor  = 2                      // master RSS per managed process: nsfd ≤ 1/2 of supervisord's
	targetDrop       = 150 * time.Millisecond // new daemon file → its worker running, median
)

// The sides of the comparison, as indexes of per-side arrays: nsfd first,
// as on the charts.
const (
	sideNsfd = iota
	sideSv
	nSides
)

var sideNames = [nSides]string{"nsfd", "supervisord"}

// sleepSeconds is the argument of every managed process: `sleep 100000`.
const sleepSeconds = "100000"

// fleetMaster is a running master of either side, as the comparison drives
// it.
type fleetMaster interface {
	// pid returns the master's pid.
	pid() int
	// started returns when the master was exec'd.
	started() time.Time
	// running reports whether the master has not exited.
	running() bool
	// diagnostics returns the tail of the master's logs, for a failure.
	diagnostics() string
	// stop asks the master to stop its processes and exit, and kills it
	// after timeout.
	stop(timeout time.Duration) error
}

var (
	_ fleetMaster = (*master)(nil)
	_ fleetMaster = (*svMaster)(nil)
)

// system is one side of the comparison.
type system struct {
	side int
	// start starts the master on programs programs of per processes each.
	start func(tb testing.TB, programs, per int) fleetMaster
	// add adds a program of one process to a running master the way its
	// users do, and returns once the master has been told, with the time a
	// control command took if one ran.
	add func(m fleetMaster, name string) (ctl time.Duration, err error)
	// program returns the name of the program a managed process belongs to.
	program func(pid int) string
}

func programName(i int) string { return fmt.Sprintf("idle%02d", i) }

// nsfdConf is a daemon file of n `sleep` workers. nsfd needs a listener per
// daemon: the workers inherit it and never use it.
func nsfdConf(sleep string, n int) string {
	return fmt.Sprintf("command = %s %s\nport = 127.0.0.1:0\ntype = simple\nmin_servers = %d\nmax_servers = %d\n"+
		"min_spare_servers = 0\nmax_spare_servers = %d\nmax_requests = 0\nstart_seconds = 0\n",
		sleep, sleepSeconds, n, n, n-1)
}

func nsfdSystem(sleep string) *system {
	return &system{
		side: sideNsfd,
		start: func(tb testing.TB, programs, per int) fleetMaster {
			confs := map[string]string{}
			for i := range programs {
				confs[programName(i)] = nsfdConf(sleep, per)
			}
			return startMasterWith(tb, confs, masterOptions{pidNS: true})
		},
		add: func(m fleetMaster, name string) (time.Duration, error) {
			return 0, dropFile(m.(*master).etc(), name+".ini", nsfdConf(sleep, 1))
		},
		program: func(pid int) string { return procEnv(pid, worker.EnvDaemon) },
	}
}

// dropFile writes content to dir/name as an editor or a deployment tool
// would: NAME.tmp first (a name both masters ignore), then a rename.
func dropFile(dir, name, content string) error {
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// svComparison is what BenchmarkSupervisord measured.
type svComparison struct {
	sv           *svInstall
	idle         *idleRun
	churnN       int                              // processes of the fleet that is killed and added to
	up           map[int]*[nSides][]time.Duration // start-up times by number of processes
	kill         [nSides][]time.Duration          // kill → replacement running
	drop         [nSides][]time.Duration          // new file → its process running
	ctl          []time.Duration                  // supervisorctl update, in each supervisord drop
	spawn        [nSpawnSides][]startRun          // the starts of the idle-size fleet, the floor's included
	floor        string                           // gcc's version, or why the floor did not run
	bigKill      []time.Duration                  // kill → replacement running on nsfd's idle-size fleet (full mode)
	bigKillFloor []time.Duration                  // the same on the floor's, killed in turn with nsfd's
	bigPoll      pollCost                         // the benchmark's polling during those kills
	bigPollFloor pollCost                         // and during the floor's
	poll         [nSides]pollCost                 // the benchmark's polling during the kills
	threads      [nSides]int                      // the churn fleet's masters' threads at the end
	pidNS        bool
}

var svResult *svComparison

// BenchmarkSupervisord compares nsfd with supervisord 4.2 on the same
// fleets of `sleep` processes: each master's start-up, memory and idle CPU
// with one process and with 1000 (measureIdle), start-up of 100 processes,
// the restart of a killed process and a program added by a new file on 100;
// and with the posix_spawn floor, the start of 1000 (startBig).
func BenchmarkSupervisord(b *testing.B) {
	if svResult != nil {
		reportSupervisord(b, svResult) // a longer -benchtime: the measurement is not repeated
		return
	}
	sv, err := findSupervisord()
	if err != nil {
		b.Skipf("supervisord not found, so nsfd is not compared with it (Debian: apt-get install supervisor): %v", err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skip("no sleep(1) for the managed processes:", err)
	}
	systems := [nSides]*system{nsfdSystem(sleep), svSystem(sv, sleep)}
	programs := *flagDaemons
	per := max(1, 100/programs)
	churnN := programs * per

	// The idle fleets; under -bench.quick they are the 100-process fleets
	// the kills and drops go to.
	_, idlePer := idleFleet()
	idle, kept := measureIdle(b, sv, idlePer == per)
	idleResult = idle
	c := &svComparison{sv: sv, idle: idle, churnN: churnN, up: map[int]*[nSides][]time.Duration{}, pidNS: idle.pidNS}
	upAt := func(n int) *[nSides][]time.Duration {
		if c.up[n] == nil {
			c.up[n] = &[nSides][]time.Duration{}
		}
		return c.up[n]
	}
	for side, o := range idle.sides {
		upAt(1)[side] = append(upAt(1)[side], o.baseStartup)
		upAt(idle.n)[side] = append(upAt(idle.n)[side], o.startup)
		c.spawn[side] = append(c.spawn[side], startRun{up: o.startup, masterCPU: o.startupCPU, childCPU: o.childCPU})
	}
	// order returns the sides in the order of round i: who goes first alternates.
	order := func(i int) [nSides]*system {
		if i%2 == 1 {
			return [nSides]*system{systems[sideSv], systems[sideNsfd]}
		}
		return systems
	}
	c.startBig(b, sleep, systems, programs, idlePer, idle.n != churnN)

	// Start-up of the 100-process fleet, rounds alternating which side goes
	// first (the idle fleets are the first round when they have 100); the
	// last round's fleets stay up for the kills and drops.
	var fleets [nSides]*fleet
	for _, f := range kept {
		fleets[f.sys.side] = f
	}
	rounds := quick(3, 1)
	for i := len(kept) / int(nSides); i < rounds; i++ {
		if fleets[sideNsfd] != nil {
			stopFleets(b, fleets[:]...)
		}
		for _, sys := range order(i) {
			f, d := bringUp(b, sys, programs, per)
			upAt(churnN)[sys.side] = append(upAt(churnN)[sys.side], d)
			fleets[sys.side] = f
			c.pidNS = c.pidNS && isolated(f.m)
		}
	}

	for i := range quick(100, 20) {
		for _, sys := range order(i) {
			c.kill[sys.side] = append(c.kill[sys.side], fleets[sys.side].kill(b))
		}
	}
	for i := range quick(10, 3) {
		for _, sys := range order(i) {
			d, ctl := fleets[sys.side].add(b, fmt.Sprintf("drop%02d", i))
			c.drop[sys.side] = append(c.drop[sys.side], d)
			if sys.side == sideSv {
				c.ctl = append(c.ctl, ctl)
			}
		}
	}
	for side, f := range fleets {
		c.poll[side] = f.poll
		if mem, err := readMem(f.m.pid()); err == nil {
			c.threads[side] = mem.threads
		}
	}
	stopFleets(b, fleets[:]...)
	svResult = c
	reportSupervisord(b, c)
	recordSupervisord(c)
}

// BenchmarkMasterOverhead reports nsfd's master with -bench.idle-daemons
// daemons of -bench.idle-workers idle workers each (`sleep`, type = simple):
// its RSS and CPU from /proc once all of them run (overhead_test.go has the
// targets and the section). It is declared after BenchmarkSupervisord so
// that, when both run, the nsfd fleet of that comparison is this one, started
// once; alone, it starts nsfd's fleet without supervisord's.
func BenchmarkMasterOverhead(b *testing.B) {
	if idleResult == nil {
		idleResult, _ = measureIdle(b, nil, false)
	}
	reportOverhead(b, idleResult.sides[sideNsfd])
}
