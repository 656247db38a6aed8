//go:build linux

package main

// End-to-end tests of preload = true (docs/protocol.md, "Preload
// fork-server"): real Python and Perl fork-servers under a real master.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// preloadConf is a preloaded echo daemon running prog (examples/python
// or examples/perl).
func preloadConf(interp, prog, extra string) string {
	return "command = " + interp + " " + filepath.Join(repoDir, prog) + "\nport = 127.0.0.1:0\ntype = notify\npreload = true\n" +
		"start_seconds = 10ms\nbackoff_initial = 20ms\n" + extra
}

var forkServerRE = regexp.MustCompile(`preload fork-server started: pid=(\d+)`)

// forkServers returns the pids of the fork-servers the master started, in order.
func forkServers(e *env) []int {
	var out []int
	for _, m := range forkServerRE.FindAllStringSubmatch(e.log(), -1) {
		pid, _ := strconv.Atoi(m[1])
		out = append(out, pid)
	}
	return out
}

// preloadWorkers returns the master's children running prog but the
// fork-servers.
func preloadWorkers(e *env, m *master, prog string) []int {
	fss := forkServers(e)
	var out []int
	for _, pid := range m.workers(prog) {
		if !slicesContains(fss, pid) {
			out = append(out, pid)
		}
	}
	return out
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// preloadLang is one worker language's preloaded echo daemon.
type preloadLang struct {
	name, prog string
	interp     func(t *testing.T) string
	comm       string // the workers' command name
	ready      string // the line a worker prints once it serves
	loaded     string // the line the fork-server prints once it loaded the application
}

var preloadLangs = []preloadLang{
	{"python", "examples/python/preload_echo.py", python3, "python", "stdout: python echo worker", "application loaded"},
	{"perl", "examples/perl/preload-echo.pl", perlPath, "perl", "stdout: perl echo worker", "application loaded"},
}

func perlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("perl is not installed")
	}
	return p
}

// TestPreload: a preloaded daemon serves from workers forked by one
// fork-server, each the master's child in a process group of its own with
// its own LISTEN_PID and slot, its output in the central log under its pid;
// a killed worker is forked again from the same fork-server; a killed
// fork-server is replaced at the next spawn while the workers keep serving;
// `nsfd restart` and an edit of the file roll onto a new fork-server with no
// failed request; a master killed with SIGKILL leaves no process behind.
func TestPreload(t *testing.T) {
	t.Parallel()
	needPump(t, "cannot preload (no subreaper, no pidfds)")
	for _, lang := range preloadLangs {
		t.Run(lang.name, func(t *testing.T) {
			t.Parallel()
			testPreload(t, lang)
		})
	}
}

func testPreload(t *testing.T, lang preloadLang) {
	interp := lang.interp(t)
	e := newEnv(t)
	conf := preloadConf(interp, lang.prog, "min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n")
	e.write("pre.ini", conf)
	m := e.start()
	addr := m.addr("pre")
	waitFor(t, "2 preloaded workers ready", 20*time.Second, func() bool { return strings.Count(e.log(), lang.ready) >= 2 })
	fss := forkServers(e)
	if len(fss) != 1 {
		t.Fatalf("fork-servers started: %v, want one", fss)
	}
	ws := preloadWorkers(e, m, lang.comm)
	if len(ws) != 2 {
		t.Fatalf("workers %v, want 2 children of the master", ws)
	}
	log := e.log()
	slots := map[string]bool{}
	for _, pid := range ws {
		if pg, _ := syscall.Getpgid(pid); pg != pid {
			t.Errorf("worker %d is in process group %d, not its own", pid, pg)
		}
		re := regexp.MustCompile(`pre\[` + strconv.Itoa(pid) + `\] stdout: .*LISTEN_PID=(\d+) slot=(\d+)`)
		mm := re.FindStringSubmatch(log)
		if mm == nil {
			t.Errorf("worker %d's output is not in the central log under its pid", pid)
			continue
		}
		if mm[1] != strconv.Itoa(pid) {
			t.Errorf("worker %d has LISTEN_PID=%s", pid, mm[1])
		}
		slots[mm[2]] = true
	}
	if len(slots) != 2 {
		t.Errorf("the workers' slots are %v, want two distinct", slots)
	}
	if os.Getenv("NSFD_CGROUPS") != "off" && os.Geteuid() == 0 {
		// Contained: each worker in a control group of its own, not the
		// fork-server's.
		groups := map[string]int{}
		for _, pid := range append([]int{fss[0]}, ws...) {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
			g := strings.TrimSpace(string(b))
			if !strings.Contains(g, "/pre/w") {
				t.Errorf("process %d is in %q, not a worker group of the daemon", pid, g)
			}
			if other, dup := groups[g]; dup {
				t.Errorf("processes %d and %d share the control group %q", other, pid, g)
			}
			groups[g] = pid
		}
	}
	for i := range 5 {
		echo(t, addr, "preloaded "+strconv.Itoa(i))
	}

	// A killed worker is forked again from the same fork-server: no exec,
	// the application is not loaded again.
	syscall.Kill(ws[0], syscall.SIGKILL)
	waitFor(t, "replacement", 20*time.Second, func() bool {
		now := preloadWorkers(e, m, lang.comm)
		return len(now) == 2 && !slicesContains(now, ws[0])
	})
	if n := len(forkServers(e)); n != 1 {
		t.Errorf("%d fork-servers after a worker was killed, want the same one", n)
	}
	if n := strings.Count(e.log(), lang.loaded); n != 1 {
		t.Errorf("the application was loaded %d times, want once", n)
	}

	// A killed fork-server: its workers keep serving; the next spawn starts
	// a new one.
	syscall.Kill(fss[0], syscall.SIGKILL)
	echo(t, addr, "the fork-server is gone")
	victim := preloadWorkers(e, m, lang.comm)[0]
	syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, "a new fork-server and a replacement", 20*time.Second, func() bool {
		now := preloadWorkers(e, m, lang.comm)
		return len(forkServers(e)) == 2 && len(now) == 2 && !slicesContains(now, victim) && alive(forkServers(e)[1])
	})
	if alive(fss[0]) {
		t.Errorf("the killed fork-server %d is still there", fss[0])
	}

	// Rolls under load: no failed request.
	stop := make(chan struct{})
	var failed, served atomic.Int64
	var wg sync.WaitGroup
	for c := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := tryEcho(addr, fmt.Sprintf("load %d %d", c, i)); err != nil {
					failed.Add(1)
					t.Logf("request failed: %v", err)
				} else {
					served.Add(1)
				}
			}
		}()
	}
	rolled := func(n int) func() bool {
		return func() bool {
			fss := forkServers(e)
			if len(fss) != n || !alive(fss[n-1]) {
				return false
			}
			for _, f := range fss[:n-1] {
				if alive(f) {
					return false
				}
			}
			now := preloadWorkers(e, m, lang.comm)
			return len(now) >= 2 && strings.Count(e.log(), lang.ready) >= 2*n
		}
	}
	if out, errOut, code := e.nsfd("restart", "pre"); code != 0 {
		t.Fatalf("nsfd restart: %d %s %s", code, out, errOut)
	}
	waitFor(t, "restart onto a third fork-server", 30*time.Second, rolled(3))
	e.write("pre.ini", conf+"[env]\nFOO = bar\n")
	waitFor(t, "the edit onto a fourth fork-server", 30*time.Second, rolled(4))
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || served.Load() == 0 {
		t.Errorf("%d requests failed, %d served during the rolls", failed.Load(), served.Load())
	}

	// SIGKILL to the master: nothing is left.
	procs := append(preloadWorkers(e, m, lang.comm), forkServers(e)...)
	m.cmd.Process.Kill()
	<-m.exited
	waitFor(t, "no process left after the master's SIGKILL", 10*time.Second, func() bool {
		for _, pid := range procs {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}

func TestPreloadStopLeavesNothing(t *testing.T) {
	t.Parallel()
	needPump(t, "cannot preload (no subreaper, no pidfds)")
	e := newEnv(t)
	e.write("pre.ini", preloadConf(perlPath(t), "examples/perl/preload-echo.pl", "min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n"))
	m := e.start()
	waitFor(t, "2 preloaded workers ready", 20*time.Second, func() bool { return strings.Count(e.log(), "stdout: perl echo worker") >= 2 })
	procs := append(preloadWorkers(e, m, "perl"), forkServers(e)...)
	if code := m.stop(); code != 0 {
		t.Fatalf("nsfd run exited %d", code)
	}
	for _, pid := range procs {
		if alive(pid) {
			t.Errorf("process %d left after the stop", pid)
		}
	}
	filepath.WalkDir(filepath.Join(e.dir, "var"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeNamedPipe != 0 {
			t.Errorf("FIFO left: %s", path)
		}
		return nil
	})
}

// TestPreloadAsDaemonUser: the fork-server and its workers run as the
// daemon's user, and the workers can open their output FIFOs.
func TestPreloadAsDaemonUser(t *testing.T) {
	t.Parallel()
	needPump(t, "cannot preload (no subreaper, no pidfds)")
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	perl := perlPath(t) // not python3: pyenv's lives where nobody cannot reach it
	e := newEnv(t)
	os.Chmod(e.dir, 0o755) // nobody must reach its notify socket under var/run
	e.write("pre.ini", preloadConf(perl, "examples/perl/preload-echo.pl", "user = nobody\nmin_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 3\n"))
	m := e.start()
	addr := m.addr("pre")
	waitFor(t, "2 preloaded workers ready", 20*time.Second, func() bool {
		return strings.Count(e.log(), "stdout: perl echo worker") >= 2
	})
	for _, pid := range append(preloadWorkers(e, m, "perl"), forkServers(e)...) {
		if uid, _, _ := procIDs(pid); uid != "65534 65534 65534 65534" {
			t.Errorf("process %d: Uid %q, want nobody's", pid, uid)
		}
	}
	echo(t, addr, "as nobody")
}

// TestPreloadBrokenForkServerGoesFatal: a program that never says "ready"
// (here: it exits) is a failed start each time, with the back-off, until
// the daemon goes fatal; the log says why.
func TestPreloadBrokenForkServerGoesFatal(t *testing.T) {
	t.Parallel()
	needPump(t, "cannot preload (no subreaper, no pidfds)")
	e := newEnv(t)
	e.write("bad.ini", "command = /bin/sh -c \"echo no fork-server here; exit 3\"\nport = 127.0.0.1:0\npreload = true\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\nstart_retries = 3\nbackoff_initial = 20ms\n")
	e.start()
	waitFor(t, "the daemon to go fatal", 20*time.Second, func() bool {
		return strings.Contains(e.log(), "nsfd.bad: daemon state: state=fatal")
	})
	log := e.log()
	for _, want := range []string{"stdout: no fork-server here", `exited before it said \"ready\"`} {
		if !strings.Contains(log, want) {
			t.Errorf("central log lacks %q", want)
		}
	}
	if n := strings.Count(log, "preload fork-server started"); n != 3 {
		t.Errorf("%d fork-servers started, want 3 (start_retries)", n)
	}
}

// TestPreloadAcrossUpgrade: `nsfd upgrade` keeps the preloaded workers
// (they are the master's children like any other); the old fork-server
// leaves with the old master's end of its socket, and the next spawn starts
// a new one.
func TestPreloadAcrossUpgrade(t *testing.T) {
	t.Parallel()
	needPump(t, "cannot preload (no subreaper, no pidfds)")
	bin := filepath.Join(t.TempDir(), "nsfd")
	install(t, filepath.Join(binDir, "nsfd"), bin)
	e := newEnv(t)
	e.write("pre.ini", preloadConf(perlPath(t), "examples/perl/preload-echo.pl", "min_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 2\nmax_servers = 3\n"))
	m := e.startBin(bin)
	addr := m.addr("pre")
	waitFor(t, "2 preloaded workers ready", 20*time.Second, func() bool { return strings.Count(e.log(), "stdout: perl echo worker") >= 2 })
	ws := preloadWorkers(e, m, "perl")
	fs0 := forkServers(e)[0]
	if out, errOut, code := e.nsfd("upgrade"); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	echo(t, addr, "after the upgrade")
	waitFor(t, "the old fork-server to leave", 10*time.Second, func() bool { return !alive(fs0) })
	syscall.Kill(ws[0], syscall.SIGKILL)
	waitFor(t, "a replacement from a new fork-server", 20*time.Second, func() bool {
		now := preloadWorkers(e, m, "perl")
		return len(forkServers(e)) == 2 && len(now) == 2 && !slicesContains(now, ws[0]) && slicesContains(now, ws[1])
	})
	echo(t, addr, "from the new fork-server's worker")
	procs := append(preloadWorkers(e, m, "perl"), forkServers(e)...)
	if code := m.stop(); code != 0 {
		t.Errorf("master exit %d", code)
	}
	for _, pid := range procs {
		if alive(pid) {
			t.Errorf("process %d left after the stop", pid)
		}
	}
}

// TestPreloadStatusAnswersWhileTheApplicationLoads: the pool does not wait
// for a fork-server that is loading the application (which may take up to
// ready_timeout): `nsfd status` answers meanwhile and says the daemon is
// starting, and the workers come once the application has loaded. The
// application here waits for a file the test makes, not for a time.
func TestPreloadStatusAnswersWhileTheApplicationLoads(t *testing.T) {
	t.Parallel()
	needPump(t, "cannot preload (no subreaper, no pidfds)")
	py := python3(t)
	dir := t.TempDir()
	gate := filepath.Join(dir, "loaded")
	app := filepath.Join(dir, "slow_app.py")
	if err := os.WriteFile(app, []byte(`import os, runpy, sys, time
gate = sys.argv.pop(1)
while not os.path.exists(gate):  # a long load
    time.sleep(0.01)
runpy.run_path(`+strconv.Quote(filepath.Join(repoDir, "examples/python/preload_echo.py"))+`, run_name="__main__")
`), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.write("slow.ini", "command = "+py+" "+app+" "+gate+"\nport = 127.0.0.1:0\ntype = notify\npreload = true\nready_timeout = 2m\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	addr := m.addr("slow")
	waitFor(t, "the fork-server", 20*time.Second, func() bool { return len(forkServers(e)) == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "nsfd"), "--etc", e.etc, "status", "slow").CombinedOutput()
	if ctx.Err() != nil {
		t.Fatal("nsfd status hung while the fork-server loads the application")
	}
	// Exit 3: a daemon that is not running yet (as systemctl status says).
	if ee, ok := err.(*exec.ExitError); (err != nil && (!ok || ee.ExitCode() != 3)) || !strings.Contains(string(out), "starting") {
		t.Errorf("status while loading: %v\n%s", err, out)
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a preloaded worker", 20*time.Second, func() bool { return len(preloadWorkers(e, m, "python")) == 1 })
	echo(t, addr, "once loaded")
	if n := len(forkServers(e)); n != 1 {
		t.Errorf("%d fork-servers started, want 1", n)
	}
}
