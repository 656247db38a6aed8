package prefork

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	proto "github.com/nsfd/nsfd/worker"
)

// Helpers for the pool tests; they use raw sockets, not the worker-side API,
// so the master side is tested on its own.
func init() {
	testHelpers["pool-echo"] = func() {
		fmt.Printf("pid=%d listen_pid=%s fds=%s names=%s worker=%s daemon=%s\n", os.Getpid(),
			os.Getenv(proto.EnvListenPID), os.Getenv(proto.EnvListenFDs), os.Getenv(proto.EnvListenFDNames),
			os.Getenv(proto.EnvWorker), os.Getenv(proto.EnvDaemon))
		signal.Ignore(syscall.SIGINT)
		l, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		rawNotify(proto.NotifyReady)
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() { <-term; os.Exit(0) }()
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(4)
			}
			rawNotify(proto.NotifyBusy)
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				io.WriteString(c, line)
			}
			c.Close()
			rawNotify(proto.NotifyIdle)
		}
	}
	testHelpers["pool-exit"] = func() {
		fmt.Println("exiting at once")
		os.Exit(1)
	}
	testHelpers["pool-silent"] = func() { // never READY, never exits on its own
		select {}
	}
	testHelpers["pool-stubborn"] = func() { // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		rawNotify(proto.NotifyReady)
		fmt.Println("stubborn ready")
		select {}
	}
}

func rawNotify(msg string) {
	path := os.Getenv(proto.EnvNotifySocket)
	if path == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	c.Write([]byte(msg))
	c.Close()
}

// lines collects worker output for assertions, one "<pid> <stream> <line>"
// a line.
type lines struct {
	mu  sync.Mutex
	buf []string
}

// output is a Config.Output.
func (l *lines) output(pid int, stream string) io.WriteCloser {
	return &lineCollector{l: l, prefix: fmt.Sprintf("%d %s ", pid, stream)}
}

func (l *lines) add(line string) {
	l.mu.Lock()
	l.buf = append(l.buf, line)
	l.mu.Unlock()
}

// lineCollector is the writer of one stream for lines.
type lineCollector struct {
	l      *lines
	prefix string
	part   []byte
}

func (c *lineCollector) Write(p []byte) (int, error) {
	c.part = append(c.part, p...)
	for {
		i := bytes.IndexByte(c.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		c.l.add(c.prefix + string(c.part[:i]))
		c.part = c.part[i+1:]
	}
}

func (c *lineCollector) Close() error {
	if len(c.part) > 0 {
		c.l.add(c.prefix + string(c.part))
	}
	c.part = nil
	return nil
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.buf...)
}

func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestPool(t *testing.T, helper string, mod func(*Config)) (*Pool, *Listener, *lines) {
	t.Helper()
	ctx := context.Background()
	l, err := Bind(ctx, ListenSpec{Network: "tcp", Address: "127.0.0.1:0", UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &lines{}
	cfg := Config{
		Name:            "t",
		Node:            "testnode",
		Command:         []string{exe},
		Env:             []string{"NSFD_TEST_HELPER=" + helper, "GORACE=atexit_sleep_ms=0"},
		Listeners:       []*Listener{l},
		NotifyPath:      t.TempDir() + "/n.sock",
		Notify:          true,
		Policy:          PolicyOptions{MinServers: 3, MaxServers: 10, MinSpareServers: 0, MaxSpareServers: 5, MinChildTTL: time.Hour},
		ReadyTimeout:    5 * time.Second,
		GracefulTimeout: 5 * time.Second,
		StartPeriod:     50 * time.Millisecond,
		StartRetries:    3,
		BackoffInitial:  20 * time.Millisecond,
		BackoffMax:      time.Second,
		Exec:            ExecOptions{Umask: -1, UID: -1, GID: -1},
		Output:          out.output,
		Procs:           testProcs,
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	return p, l, out
}

func status(t *testing.T, p *Pool) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readyWorkers(st Status) []int {
	var pids []int
	for _, w := range st.Workers {
		if w.State == "idle" || w.State == "busy" {
			pids = append(pids, w.PID)
		}
	}
	return pids
}

func echoOnce(t *testing.T, addr net.Addr, msg string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s\n", msg)
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo %q: got %q, %v", msg, got, err)
	}
}

func TestPoolStartsWorkersWithInheritedListener(t *testing.T) {
	p, l, out := newTestPool(t, "pool-echo", nil)
	waitFor(t, "3 ready workers", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 3 })
	st := status(t, p)
	if st.State != PoolRunning {
		t.Fatalf("state %s, want running", st.State)
	}
	echoOnce(t, l.Addr, "hello")
	// Each worker saw its own pid in LISTEN_PID (the shim execs in place) and the protocol variables.
	waitFor(t, "3 start lines", 5*time.Second, func() bool { return len(out.all()) >= 3 })
	slots := map[string]bool{}
	for _, line := range out.all() {
		f := strings.Fields(line) // "<pid> stdout pid=.. listen_pid=.. fds=1 names=t worker=N daemon=t"
		if f[2] != "pid="+f[0] || f[3] != "listen_pid="+f[0] {
			t.Errorf("LISTEN_PID is not the worker's pid: %s", line)
		}
		if f[4] != "fds=1" || f[5] != "names=t" || f[7] != "daemon=t" {
			t.Errorf("protocol variables: %s", line)
		}
		slots[f[6]] = true
	}
	if len(slots) != 3 {
		t.Errorf("want 3 distinct slots, got %v", slots)
	}
	// Workers are direct children of this process.
	for _, w := range st.Workers {
		if ppid := parentOf(t, w.PID); ppid != os.Getpid() {
			t.Errorf("worker %d has parent %d, want %d", w.PID, ppid, os.Getpid())
		}
	}
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	n, _ := strconv.Atoi(f[1])
	return n
}

func TestPoolReplacesKilledWorker(t *testing.T) {
	p, l, _ := newTestPool(t, "pool-echo", func(c *Config) {
		c.Policy.MinServers = 2
		c.Policy.MaxSpareServers = 2
		c.StartPeriod = time.Millisecond
	})
	waitFor(t, "2 ready workers", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 2 })
	victim := readyWorkers(status(t, p))[0]
	syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, "a replacement", 10*time.Second, func() bool {
		pids := readyWorkers(status(t, p))
		if len(pids) != 2 {
			return false
		}
		for _, pid := range pids {
			if pid == victim {
				return false
			}
		}
		return true
	})
	if st := status(t, p); st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
	echoOnce(t, l.Addr, "still here")
}

func TestPoolIgnoresForeignAndMalformedNotify(t *testing.T) {
	if os.Getenv("NSFD_TEST_NOTIFY") == "per-worker" {
		t.Skip("per-worker notify sockets (macOS, FreeBSD) have no shared socket for a foreign sender; whoever reaches a worker's socket speaks for it")
	}
	p, _, _ := newTestPool(t, "pool-echo", func(c *Config) { c.Policy.MinServers = 1; c.Policy.MaxSpareServers = 1; c.Policy.MaxServers = 2 })
	waitFor(t, "ready", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 1 })
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: p.cfg.NotifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []string{"READY=1", "garbage", "BUSY=7", strings.Repeat("x", proto.MaxNotifySize+10)} {
		c.Write([]byte(m))
	}
	waitFor(t, "4 dropped datagrams", 5*time.Second, func() bool { return status(t, p).Malformed == 4 })
	if st := status(t, p); st.State != PoolRunning || len(st.Workers) != 1 {
		t.Fatalf("pool disturbed: %+v", st)
	}
}

// TestPoolExitComesAfterOutput: when the pool learns that a worker exited,
// everything the worker wrote before is in its output already, its last
// line without a newline too.
func TestPoolExitComesAfterOutput(t *testing.T) {
	const n = 3000 // lines a stream: more than a pipe holds
	var (
		mu    sync.Mutex
		exits int
		short []string
	)
	out := &lines{}
	newTestPool(t, "pump-lines", func(c *Config) {
		c.Env = append(c.Env, "PUMP_LINES="+strconv.Itoa(n), "PUMP_TAIL=no newline")
		c.Notify = false
		c.StartRetries = 100
		c.Output = out.output
		c.Observer = func(e Event) {
			if e.Kind != EventExit {
				return
			}
			got := 0
			for _, l := range out.all() {
				if strings.HasPrefix(l, strconv.Itoa(e.PID)+" ") {
					got++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			exits++
			if got != 2*n+1 {
				short = append(short, fmt.Sprintf("worker %d: %d of %d lines at its exit", e.PID, got, 2*n+1))
			}
		}
	})
	waitFor(t, "10 exits", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return exits >= 10
	})
	mu.Lock()
	defer mu.Unlock()
	for _, s := range short {
		t.Error(s)
	}
}
