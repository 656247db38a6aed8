package bench

// The two ways of running workers side by side: under `nsfd run`, and
// "direct", N copies on one socket the benchmark binds itself.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/worker"
)

// waitFor polls cond every interval until it holds or d has passed.
func waitFor(d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// pollUntil checks cond until it holds or limit has passed since t0, and
// returns the time from t0 to the end of the check that saw it hold.
// Between checks it pauses for 1/200 of the time waited so far, at least
// 200 µs: what it times is resolved to about 0.5% (or 0.2–0.3 ms) at the
// cost of a few hundred checks however long the wait, on the same schedule
// whatever it waits for. The pause is nanosleep(2) itself: a time.Sleep of
// 100 µs takes about a millisecond (the runtime's timers).
func pollUntil(t0 time.Time, limit time.Duration, cond func() bool) (time.Duration, bool) {
	for {
		if cond() {
			return time.Since(t0), true
		}
		waited := time.Since(t0)
		if waited > limit {
			return waited, false
		}
		ts := syscall.NsecToTimespec(int64(max(200*time.Microsecond, waited/200)))
		syscall.Nanosleep(&ts, nil)
	}
}

// startIsolated starts the command newCmd makes with a parent-death signal
// and, where the benchmark may (as root), as the first process of a new PID
// namespace: when the benchmark dies, the signal kills the master and the
// kernel then kills everything the master started, including children that
// have no parent-death signal of their own (supervisord's). Where namespaces
// are refused it starts a second command from newCmd without one; the bool
// says whether the namespace was made.
func startIsolated(newCmd func() *exec.Cmd) (*exec.Cmd, bool, error) {
	cmd := newCmd()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Cloneflags: syscall.CLONE_NEWPID}
	err := cmd.Start()
	if err == nil || !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EINVAL) {
		return cmd, err == nil, err
	}
	cmd = newCmd()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, false, cmd.Start()
}

// master is a running `nsfd run` on an etc/ in a temp dir.
type master struct {
	tb     testing.TB
	dir    string
	cmd    *exec.Cmd
	t0     time.Time // just before the exec
	pidNS  bool      // the master is the first process of its own PID namespace
	exited chan struct{}
}

// masterOptions are the ways startMasterWith can start the master.
type masterOptions struct {
	// pidNS runs the master as the first process of a new PID namespace
	// where it may (startIsolated).
	pidNS bool
	// env is added to the master's environment.
	env []string
}

// startMaster writes nsfd.ini and one NAME.ini per entry of daemons, and
// starts `nsfd run`. The master dies with the benchmark (parent-death
// signal) and is stopped when tb ends.
func startMaster(tb testing.TB, daemons map[string]string) *master {
	tb.Helper()
	return startMasterWith(tb, daemons, masterOptions{})
}

// startMasterWith is startMaster with options.
func startMasterWith(tb testing.TB, daemons map[string]string, opts masterOptions) *master {
	tb.Helper()
	// A short path: UNIX socket paths (the notify sockets) are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "nsfdb")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	etc := filepath.Join(dir, "etc")
	files := map[string]string{"nsfd.ini": "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = info\n"}
	for name, conf := range daemons {
		files[name+".ini"] = conf
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	out, err := os.Create(filepath.Join(dir, "master.out"))
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	newCmd := func() *exec.Cmd {
		cmd := exec.Command(bins.nsfd, "run", "--etc", etc)
		cmd.Stdout, cmd.Stderr = out, out
		if len(opts.env) > 0 {
			cmd.Env = append(os.Environ(), opts.env...)
		}
		return cmd
	}
	m := &master{tb: tb, dir: dir, exited: make(chan struct{})}
	m.t0 = time.Now()
	if opts.pidNS {
		m.cmd, m.pidNS, err = startIsolated(newCmd)
	} else {
		m.cmd = newCmd()
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = m.cmd.Start()
	}
	if err != nil {
		tb.Fatal(err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()
	tb.Cleanup(func() {
		if err := m.stop(60 * time.Second); err != nil {
			tb.Error(err)
		}
	})
	return m
}

func (m *master) pid() int { return m.cmd.Process.Pid }

// started returns when the master was exec'd.
func (m *master) started() time.Time { return m.t0 }

// etc returns the master's etc/ directory.
func (m *master) etc() string { return filepath.Join(m.dir, "etc") }

func (m *master) log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "var", "log", "nsfd.log"))
	return string(b)
}

// diagnostics returns the tail of the central log and the master's own output.
func (m *master) diagnostics() string {
	log := m.log()
	if len(log) > 4000 {
		log = "…" + log[len(log)-4000:]
	}
	out, _ := os.ReadFile(filepath.Join(m.dir, "master.out"))
	return fmt.Sprintf("central log:\n%s\nmaster output:\n%s", log, out)
}

func (m *master) running() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

var listenersRE = regexp.MustCompile(`listeners=\["tcp ([^"]+)"`)

// addr waits for a daemon's "daemon started" record and returns its
// listener's address.
func (m *master) addr(daemon string) string {
	m.tb.Helper()
	var addr string
	ok := waitFor(30*time.Second, 20*time.Millisecond, func() bool {
		for line := range strings.SplitSeq(m.log(), "\n") {
			if strings.Contains(line, "nsfd."+daemon+": daemon started") {
				if mm := listenersRE.FindStringSubmatch(line); mm != nil {
					addr = mm[1]
					return true
				}
			}
		}
		return !m.running()
	})
	if !ok || addr == "" {
		m.tb.Fatalf("daemon %s did not start\n%s", daemon, m.diagnostics())
	}
	return addr
}

// workers returns the pids of the master's children that serve daemon.
func (m *master) workers(daemon string) []int {
	var pids []int
	for _, p := range children(m.pid()) {
		if procEnv(p.pid, worker.EnvDaemon) == daemon {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// waitWorkers waits until daemon has n workers that have each printed their
// "ready" line (the examples print it as they start serving).
func (m *master) waitWorkers(daemon string, n int) {
	m.tb.Helper()
	ok := waitFor(30*time.Second, 20*time.Millisecond, func() bool {
		pids := m.workers(daemon)
		if len(pids) != n {
			return false
		}
		log := m.log()
		for _, pid := range pids {
			if !strings.Contains(log, daemon+"["+strconv.Itoa(pid)+"] stdout: ") {
				return false
			}
		}
		return true
	})
	if !ok {
		m.tb.Fatalf("daemon %s: want %d ready workers, have %v\n%s", daemon, n, m.workers(daemon), m.diagnostics())
	}
}

// stop sends SIGTERM and waits for the master to drain and exit; after
// timeout it kills it (its workers die with it).
func (m *master) stop(timeout time.Duration) error {
	if !m.running() {
		return nil
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		return nil
	case <-time.After(timeout):
		m.cmd.Process.Kill()
		<-m.exited
		return fmt.Errorf("nsfd run did not exit within %v of SIGTERM; killed", timeout)
	}
}

// directGroup is n copies of one worker binary sharing one listening socket,
// started by the benchmark with LISTEN_FDS=1 and NSFD_DAEMON (so that a Go
// worker runs on one core, as under nsfd: worker.UseCores) and nothing else
// of nsfd's: no LISTEN_PID, no NOTIFY_SOCKET, no master.
type directGroup struct {
	addr  string
	procs []*exec.Cmd
	done  []chan struct{}
}

// startDirect binds 127.0.0.1:0 as nsfd binds a daemon's port (prefork.Bind:
// a blocking socket, backlog 1024, nsfd's default `listen`) and starts n
// copies of argv on it, waiting until each has printed its ready line.
func startDirect(tb testing.TB, n int, argv ...string) *directGroup {
	tb.Helper()
	return startDirectEnv(tb, n, nil, argv...)
}

// startDirectBoard is startDirect with a load board of the group's own, as
// nsfd gives a pool (docs/protocol.md, NSFD_LOAD_BOARD): the board's cost
// and effect without a master.
func startDirectBoard(tb testing.TB, n int, argv ...string) *directGroup {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "direct.load")
	if err := os.WriteFile(path, make([]byte, worker.LoadBoardSize), 0o600); err != nil {
		tb.Fatal(err)
	}
	return startDirectEnv(tb, n, []string{worker.EnvLoadBoard + "=" + path}, argv...)
}

// startDirectEnv is startDirect with extra, KEY=value pairs added to the
// workers' environment.
func startDirectEnv(tb testing.TB, n int, extra []string, argv ...string) *directGroup {
	tb.Helper()
	l, err := prefork.Bind(context.Background(), prefork.ListenSpec{Network: "tcp", Address: "127.0.0.1:0", Backlog: 1024, UID: -1, GID: -1})
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close() // the workers keep the socket open
	logPath := filepath.Join(tb.TempDir(), "direct.log")
	stderr, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer stderr.Close()

	env := append([]string{worker.EnvListenFDs + "=1", worker.EnvDaemon + "=direct"}, extra...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains([]string{worker.EnvListenFDs, worker.EnvListenPID, worker.EnvListenFDNames,
			worker.EnvNotifySocket, worker.EnvWatchdogUSec, worker.EnvWatchdogPID, worker.EnvDaemon, worker.EnvLoadBoard}, k) {
			env = append(env, kv)
		}
	}
	g := &directGroup{addr: l.Addr.String()}
	tb.Cleanup(g.stop)
	ready := make(chan struct{}, n)
	for range n {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		cmd.ExtraFiles = []*os.File{l.File()}
		cmd.Stderr = stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			said := false
			for sc.Scan() {
				if !said && strings.Contains(sc.Text(), "ready") {
					said = true
					ready <- struct{}{}
				}
			}
			cmd.Wait()
		}()
		g.procs = append(g.procs, cmd)
		g.done = append(g.done, done)
	}
	timeout := time.After(30 * time.Second)
	for range n {
		select {
		case <-ready:
		case <-timeout:
			log, _ := os.ReadFile(logPath)
			tb.Fatalf("direct %s: not every worker ready after 30s\n%s", argv[0], log)
		}
	}
	return g
}

func (g *directGroup) pids() []int {
	var pids []int
	for _, c := range g.procs {
		pids = append(pids, c.Process.Pid)
	}
	return pids
}

// stop sends SIGTERM to every worker and waits for them, killing those
// still there after 15s.
func (g *directGroup) stop() {
	for _, c := range g.procs {
		c.Process.Signal(syscall.SIGTERM)
	}
	timeout := time.After(15 * time.Second)
	for _, done := range g.done {
		select {
		case <-done:
		case <-timeout:
			for _, c := range g.procs {
				c.Process.Kill()
			}
			<-done
		}
	}
}
