//go:build linux

package main

// End-to-end tests: they build the real nsfd binary and the example workers
// once, write an etc/ into a temp dir, and drive the master like a user.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/prefork"
)

var (
	binDir  string // nsfd, echo, http
	repoDir string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nsfd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // tests run the CLI as nobody too
	binDir = dir
	repoDir, _ = filepath.Abs("../..")
	builds := [][]string{
		{"nsfd", "./cmd/nsfd"},
		{"echo", "./examples/echo"},
		{"http", "./examples/http"},
		{"kv", "./examples/kv"},
	}
	for _, b := range builds {
		args := []string{"build", "-o", filepath.Join(dir, b[0])}
		if raceEnabled && b[0] == "nsfd" {
			args = append(args, "-race") // the master under test runs with the race detector too
		}
		cmd := exec.Command("go", append(args, b[1])...)
		cmd.Dir = repoDir
		if b[0] == "kv" {
			// A framework daemon needs no cgo: it resolves names through
			// the master's resolver socket, whatever the registry. The kv
			// tests on a SQLite registry prove it.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			return 1
		}
	}
	code := m.Run()
	pg.Close()
	return code
}

// env is a temp etc/ and var/ for one master.
type env struct {
	t   testing.TB
	dir string // holds etc/ and var/
	etc string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	// A short path: UNIX socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "nsfd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, dir: dir, etc: filepath.Join(dir, "etc")}
	if err := os.MkdirAll(e.etc, 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	return e
}

// write replaces etc/NAME the safe way, as docs/config.md tells: the
// content goes to a temporary name, which is renamed over NAME, so the
// master applies it at once and never sees it half written. The mode of the
// file it replaces is kept.
func (e *env) write(name, content string) {
	e.t.Helper()
	path := filepath.Join(e.etc, name)
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp := filepath.Join(e.etc, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) logFile() string { return filepath.Join(e.dir, "var", "log", "nsfd.log") }

func (e *env) log() string {
	b, _ := os.ReadFile(e.logFile())
	return string(b)
}

// nsfd runs one CLI command to completion.
func (e *env) nsfd(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), append([]string{"--etc", e.etc}, args...)...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return o.String(), er.String(), code
}

// master is a running `nsfd run`.
type master struct {
	e      *env
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *env) start() *master {
	e.t.Helper()
	return e.startCmd(exec.Command(filepath.Join(binDir, "nsfd"), "run", "--etc", e.etc))
}

// startCmd starts cmd, a master of e (its output kept in the master), and
// stops it (SIGTERM, then SIGKILL after 20 s) when the test ends, logging
// its output and the central log if the test failed.
func (e *env) startCmd(cmd *exec.Cmd) *master {
	e.t.Helper()
	m := &master{e: e, cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = m.out, m.out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { m.err = cmd.Wait(); close(m.exited) }()
	e.t.Cleanup(func() {
		select {
		case <-m.exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.exited:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-m.exited
			}
		}
		if e.t.Failed() { // the master's last words too, if it died
			e.t.Logf("master output (%v):\n%s\ncentral log:\n%s", m.err, m.out.String(), e.log())
		}
	})
	return m
}

// stop sends SIGTERM and returns the exit status.
func (m *master) stop() int {
	m.e.t.Helper()
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.e.t.Fatal("master did not exit after SIGTERM")
	}
	return m.cmd.ProcessState.ExitCode()
}

func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var listenRE = regexp.MustCompile(`(tcp|udp|unix) ([^ "\]\,]+)`)

// addr waits for a daemon's "daemon started" record and returns its first listener address.
func (m *master) addr(daemon string) string {
	m.e.t.Helper()
	var addr string
	waitFor(m.e.t, daemon+" listening", 15*time.Second, func() bool {
		for _, line := range strings.Split(m.e.log(), "\n") {
			if strings.Contains(line, "nsfd."+daemon+": daemon started") {
				if mm := listenRE.FindStringSubmatch(line[strings.Index(line, "listeners"):]); mm != nil {
					addr = mm[2]
					return true
				}
			}
		}
		return false
	})
	return addr
}

// workers returns the pids of the master's children running the given program.
func (m *master) workers(prog string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		ppid, comm := procStat(pid)
		if ppid == m.cmd.Process.Pid && (prog == "" || strings.HasPrefix(comm, prog)) && !isKeeper(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isKeeper reports whether pid is the keeper of a master on the portable
// process backend: a child of the master, but no worker.
func isKeeper(pid int) bool {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	args := strings.Split(string(b), "\x00")
	return len(args) > 1 && args[1] == prefork.KeeperArg
}

// procStat returns a process's parent pid and command name, from /proc/PID/stat.
func procStat(pid int) (int, string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1, ""
	}
	open, closeP := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closeP < 0 {
		return -1, ""
	}
	f := strings.Fields(string(b[closeP+2:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid, string(b[open+1 : closeP])
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is dead for our purposes.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	return f[0] != "Z"
}

// sockets returns the socket inodes a process holds, by fd.
func sockets(pid int) map[int]string {
	out := map[int]string{}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		target, err := os.Readlink(filepath.Join(dir, ent.Name()))
		if err == nil && strings.HasPrefix(target, "socket:") {
			fd, _ := strconv.Atoi(ent.Name())
			out[fd] = target
		}
	}
	return out
}

func echo(tb testing.TB, addr, msg string) {
	tb.Helper()
	if err := tryEcho(addr, msg); err != nil {
		tb.Fatal(err)
	}
}

func tryEcho(addr, msg string) error {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("echo %q via %s: %w", msg, addr, err)
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo %q via %s: got %q", msg, addr, got)
	}
	return nil
}

// echoConf is an echo daemon of workers serving one connection each (the
// spare-server tests count busy workers by connections held).
func echoConf(extra string) string {
	return "command = " + filepath.Join(binDir, "echo") + " --concurrency 1\nport = 127.0.0.1:0\ntype = notify\n" + extra
}

func TestEchoWorkersShareOneListener(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 3\nmax_servers = 6\nmin_spare_servers = 1\nmax_spare_servers = 3\n"))
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "3 echo workers", 15*time.Second, func() bool { return len(m.workers("echo")) == 3 })
	echo(t, addr, "hello, nsfd")

	// The master holds the listening socket; every worker has the same socket as fd 3.
	masterSocks := map[string]bool{}
	for _, s := range sockets(m.cmd.Process.Pid) {
		masterSocks[s] = true
	}
	var shared string
	for _, pid := range m.workers("echo") {
		s := sockets(pid)[3]
		if s == "" || !masterSocks[s] {
			t.Fatalf("worker %d fd 3 = %q, not a socket the master holds", pid, s)
		}
		if shared != "" && s != shared {
			t.Fatalf("workers hold different sockets: %s and %s", shared, s)
		}
		shared = s
	}
	// A line the worker printed is in the central log with its daemon and pid.
	pid := m.workers("echo")[0]
	want := fmt.Sprintf("echo[%d] stdout: ", pid)
	waitFor(t, "worker line in central log", 5*time.Second, func() bool { return strings.Contains(e.log(), want) })
}

func TestKilledWorkerIsReplaced(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\nstart_seconds = 10ms\n"))
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "2 workers", 15*time.Second, func() bool { return len(m.workers("echo")) == 2 })
	victim := m.workers("echo")[0]
	syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, "replacement", 15*time.Second, func() bool {
		ws := m.workers("echo")
		return len(ws) == 2 && ws[0] != victim && ws[1] != victim
	})
	for i := range 20 {
		echo(t, addr, "after the kill "+strconv.Itoa(i))
	}
}

func TestCrashingDaemonGoesFatalOthersServe(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	e.write("crash.ini", "command = /bin/sh -c \"echo crashing; exit 3\"\nport = 127.0.0.1:0\nmin_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 3\nstart_retries = 4\nbackoff_initial = 20ms\n")
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "crash to go fatal", 20*time.Second, func() bool {
		return strings.Contains(e.log(), "nsfd.crash: daemon state: state=fatal")
	})
	log := e.log()
	// The back-off doubles: 20ms, 40ms, 80ms, then fatal after 4 failed starts.
	for _, want := range []string{"retry=2/4 backoff=20ms", "retry=3/4 backoff=40ms", "retry=4/4 backoff=80ms", "crash[", "stdout: crashing"} {
		if !strings.Contains(log, want) {
			t.Errorf("central log lacks %q", want)
		}
	}
	// 2 workers in the first round, then 3 probes; on a loaded machine the
	// second first-round worker may exit only after the first 20ms back-off
	// ran out, and a probe starts beside it: one more.
	if n := strings.Count(log, "nsfd.crash: worker failed to start"); n < 2+3 || n > 2+4 {
		t.Errorf("%d failed starts logged, want 5 (2 workers in the first round, then 3 probes), or 6", n)
	}
	echo(t, addr, "the master is still up")
	if m.cmd.ProcessState != nil {
		t.Fatal("master exited")
	}
}

func TestPythonWorker(t *testing.T) {
	e := newEnv(t)
	e.write("py.ini", "command = "+filepath.Join(repoDir, "examples/python/echo.py")+"\nport = 127.0.0.1:0\ntype = notify\nmin_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n")
	m := e.start()
	addr := m.addr("py")
	waitFor(t, "python workers ready", 15*time.Second, func() bool {
		return strings.Count(e.log(), "stdout: python echo worker") == 2
	})
	for i := range 10 {
		echo(t, addr, "from python "+strconv.Itoa(i))
	}
}
