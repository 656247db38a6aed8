package bench

// nsfd against supervisord 4.2 (issue 8, comparison 2): the same fleets of
// `sleep` processes under both masters in one run. Start-up, the restart of
// a killed process, a program added by dropping a file, and the idle
// master's memory and CPU.

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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

// svInstall is the supervisord found on the machine.
type svInstall struct {
	supervisord, supervisorctl string
	version                    string // "4.2.5"
	python                     string // "Python 3.11.2": the interpreter of supervisord's script
}

var svFound struct {
	done bool
	sv   *svInstall
	err  error
}

// findSupervisord looks for supervisord and supervisorctl in PATH, once.
func findSupervisord() (*svInstall, error) {
	if svFound.done {
		return svFound.sv, svFound.err
	}
	svFound.done = true
	sv := &svInstall{}
	var err error
	if sv.supervisord, err = exec.LookPath("supervisord"); err != nil {
		svFound.err = err
		return nil, err
	}
	if sv.supervisorctl, err = exec.LookPath("supervisorctl"); err != nil {
		svFound.err = err
		return nil, err
	}
	out, err := exec.Command(sv.supervisord, "--version").Output()
	if err != nil {
		svFound.err = fmt.Errorf("supervisord --version: %w", err)
		return nil, svFound.err
	}
	sv.version = strings.TrimSpace(string(out))
	if script, err := os.ReadFile(sv.supervisord); err == nil && bytes.HasPrefix(script, []byte("#!")) {
		line, _, _ := bytes.Cut(script[2:], []byte("\n"))
		if interp := strings.Fields(string(line)); len(interp) > 0 {
			out, _ := exec.Command(interp[0], append(interp[1:], "--version")...).CombinedOutput()
			sv.python = strings.TrimSpace(string(out))
		}
	}
	svFound.sv = sv
	return sv, nil
}

// svProgram is a [program:NAME] section of n `sleep` processes.
func svProgram(name, sleep string, n int) string {
	return fmt.Sprintf("[program:%s]\ncommand = %s %s\nnumprocs = %d\nprocess_name = %%(program_name)s_%%(process_num)03d\n"+
		"startsecs = 0\nautorestart = true\nredirect_stderr = true\nstdout_logfile = AUTO\n", name, sleep, sleepSeconds, n)
}

// svMainConf is supervisord's own configuration, in dir.
func svMainConf(dir string, minfds int) string {
	return fmt.Sprintf(`[supervisord]
logfile = %[1]s/supervisord.log
loglevel = info
pidfile = %[1]s/supervisord.pid
childlogdir = %[1]s/log
minfds = %[2]d
silent = true

[unix_http_server]
file = %[1]s/sv.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://%[1]s/sv.sock

[include]
files = %[1]s/conf.d/*.ini
`, dir, minfds)
}

// svMinFDs is supervisord's minfds for a fleet of n: its default, 1024, or
// as many as ensureLimits gives nsfd's master when that is more. supervisord
// holds a pipe end for stdout, one for stdin and a log file per process.
func svMinFDs(n int) int { return max(1024, 4*n+256) }

func svSystem(sv *svInstall, sleep string) *system {
	return &system{
		side: sideSv,
		start: func(tb testing.TB, programs, per int) fleetMaster {
			confs := map[string]string{}
			for i := range programs {
				confs[programName(i)] = svProgram(programName(i), sleep, per)
			}
			return startSupervisord(tb, sv, confs, svMinFDs(programs*per))
		},
		add: func(m fleetMaster, name string) (time.Duration, error) {
			s := m.(*svMaster)
			if err := dropFile(filepath.Join(s.dir, "conf.d"), name+".ini", svProgram(name, sleep, 1)); err != nil {
				return 0, err
			}
			t0 := time.Now()
			out, err := exec.Command(sv.supervisorctl, "-c", s.conf(), "update").CombinedOutput()
			if err != nil {
				return time.Since(t0), fmt.Errorf("supervisorctl update: %w\n%s", err, out)
			}
			return time.Since(t0), nil
		},
		program: func(pid int) string { return procEnv(pid, "SUPERVISOR_GROUP_NAME") },
	}
}

// svMaster is a running `supervisord -n -c CONF` on a configuration in a
// temp dir.
type svMaster struct {
	dir    string
	cmd    *exec.Cmd
	t0     time.Time // just before the exec
	pidNS  bool      // supervisord is the first process of its own PID namespace
	exited chan struct{}
}

// startSupervisord writes supervisord's configuration with one file per
// entry of programs (NAME → its [program:NAME] section) in its include
// directory, and starts supervisord in the foreground. It is stopped when tb
// ends.
func startSupervisord(tb testing.TB, sv *svInstall, programs map[string]string, minfds int) *svMaster {
	tb.Helper()
	dir, err := os.MkdirTemp("", "svb") // short: the control socket is a UNIX socket
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"conf.d", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	files := map[string]string{"sv.conf": svMainConf(dir, minfds)}
	for name, conf := range programs {
		files[filepath.Join("conf.d", name+".ini")] = conf
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	out, err := os.Create(filepath.Join(dir, "master.out"))
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	s := &svMaster{dir: dir, exited: make(chan struct{})}
	s.t0 = time.Now()
	s.cmd, s.pidNS, err = startIsolated(func() *exec.Cmd {
		cmd := exec.Command(sv.supervisord, "-n", "-c", s.conf())
		cmd.Stdout, cmd.Stderr = out, out
		return cmd
	})
	if err != nil {
		tb.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	tb.Cleanup(func() {
		if err := s.stop(60 * time.Second); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func (s *svMaster) conf() string       { return filepath.Join(s.dir, "sv.conf") }
func (s *svMaster) pid() int           { return s.cmd.Process.Pid }
func (s *svMaster) started() time.Time { return s.t0 }

func (s *svMaster) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *svMaster) diagnostics() string {
	log, _ := os.ReadFile(filepath.Join(s.dir, "supervisord.log"))
	if len(log) > 4000 {
		log = append([]byte("…"), log[len(log)-4000:]...)
	}
	out, _ := os.ReadFile(filepath.Join(s.dir, "master.out"))
	return fmt.Sprintf("supervisord.log:\n%s\nsupervisord output:\n%s", log, out)
}

// stop sends SIGTERM, on which supervisord stops its processes and exits;
// after timeout it kills supervisord and the processes it had.
func (s *svMaster) stop(timeout time.Duration) error {
	if !s.running() {
		return nil
	}
	kids := childPIDs(s.pid())
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		for _, pid := range kids { // without a PID namespace, nothing else would
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-s.exited
		return fmt.Errorf("supervisord did not exit within %v of SIGTERM; killed", timeout)
	}
}

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
