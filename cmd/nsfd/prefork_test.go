//go:build linux

package main

// End-to-end tests of the PreFork pool: spare servers follow the load,
// max_requests replaces workers without a failed request, the watchdog and
// ready_timeout replace hung workers.

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hold opens n connections to addr and keeps them open until the returned
// func is called. With echoConf's concurrency of 1, each occupies a worker.
func hold(t *testing.T, addr string, n int) func() {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return func() {
		for _, c := range conns {
			c.Close()
		}
	}
}

// counter samples the number of a master's workers in the background.
type counter struct {
	mu            sync.Mutex
	lo, hi, count int
	stop, done    chan struct{}
}

func (c *counter) samples() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// finish stops sampling and returns the smallest and largest worker counts seen.
func (c *counter) finish() (lo, hi int) {
	close(c.stop)
	<-c.done
	return c.lo, c.hi
}

func watchCount(m *master, prog string) *counter {
	c := &counter{lo: 1 << 30, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			n := len(m.workers(prog))
			c.mu.Lock()
			c.lo, c.hi, c.count = min(c.lo, n), max(c.hi, n), c.count+1
			c.mu.Unlock()
			select {
			case <-c.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return c
}

func TestSpareServersFollowTheLoad(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 2\nmax_spare_servers = 4\nmax_servers = 10\nmin_child_ttl = 1s\n"))
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "2 idle workers", 15*time.Second, func() bool { return len(m.workers("echo")) == 2 })

	// 6 slow clients: the pool covers them plus 2 spares.
	start := time.Now()
	release := hold(t, addr, 6)
	waitFor(t, "8 workers", 10*time.Second, func() bool { return len(m.workers("echo")) == 8 })
	grow := time.Since(start)
	t.Logf("pool grew from 2 to 8 workers in %v", grow)
	if grow > 2*time.Second { // the target is 200ms; a loaded CI machine gets slack, the figure is logged
		t.Errorf("pool took %v to grow", grow)
	}

	// Released: back to min_servers after min_child_ttl, never below it.
	c := watchCount(m, "echo")
	release()
	waitFor(t, "shrink to 2", 15*time.Second, func() bool { return len(m.workers("echo")) == 2 })
	n := c.samples()
	waitFor(t, "more samples", 10*time.Second, func() bool { return c.samples() > n+50 })
	if lo, _ := c.finish(); lo < 2 {
		t.Errorf("pool went down to %d workers, below min_servers 2", lo)
	}
	echo(t, addr, "still serving")

	// 50 clients: never more than max_servers.
	c = watchCount(m, "echo")
	release = hold(t, addr, 50)
	defer release()
	waitFor(t, "10 workers", 10*time.Second, func() bool { return len(m.workers("echo")) == 10 })
	n = c.samples()
	waitFor(t, "more samples", 10*time.Second, func() bool { return c.samples() > n+100 })
	if _, hi := c.finish(); hi > 10 {
		t.Errorf("pool reached %d workers, above max_servers 10", hi)
	}
}

func TestMaxRequestsReplacesWorkersWithoutFailures(t *testing.T) {
	e := newEnv(t)
	e.write("web.ini", "command = "+filepath.Join(binDir, "http")+"\nport = 127.0.0.1:0\ntype = notify\n"+
		"min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\nmax_requests = 5\n")
	m := e.start()
	addr := m.addr("web")
	waitFor(t, "2 workers", 15*time.Second, func() bool { return len(m.workers("http")) == 2 })
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	served := map[int]int{} // pid -> requests
	for i := range 30 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("request %d failed: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, err)
		}
		f := strings.Fields(string(body)) // "hello from PID"
		pid, _ := strconv.Atoi(f[len(f)-1])
		served[pid]++
		if served[pid] > 5 {
			t.Fatalf("worker %d served %d requests, max_requests is 5", pid, served[pid])
		}
		if served[pid] == 5 {
			// The master replaces it: a new worker starts, and once it is
			// ready the old one gets SIGTERM and exits.
			waitFor(t, "worker "+strconv.Itoa(pid)+" to be replaced", 10*time.Second, func() bool { return !alive(pid) })
		}
	}
	if len(served) < 6 {
		t.Errorf("30 requests with max_requests = 5 were served by %d workers, want at least 6: %v", len(served), served)
	}
	if n := len(m.workers("http")); n < 2 {
		t.Errorf("%d workers left, want min_servers 2", n)
	}
}

func TestWatchdogReplacesSilentWorker(t *testing.T) {
	e := newEnv(t)
	// The echo worker pings (worker.Serve does); the shell worker never does.
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\nwatchdog = 200ms\n"))
	e.write("mute.ini", "command = /bin/sh -c 'echo mute; exec sleep 1000'\nport = 127.0.0.1:0\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\nwatchdog = 200ms\nstart_seconds = 10ms\n")
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "the mute worker replaced twice", 15*time.Second, func() bool {
		return strings.Count(e.log(), "nsfd.mute: worker missed its watchdog") >= 2
	})
	if strings.Contains(e.log(), "nsfd.echo: worker missed its watchdog") {
		t.Error("the echo worker pings its watchdog, yet was killed")
	}
	echo(t, addr, "alive")
}

func TestReadyTimeoutIsAFailedStart(t *testing.T) {
	e := newEnv(t)
	e.write("late.ini", "command = /bin/sh -c \"exec sleep 1000\"\nport = 127.0.0.1:0\ntype = notify\nready_timeout = 150ms\nstart_retries = 2\nbackoff_initial = 10ms\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	m.addr("late")
	waitFor(t, "fatal", 15*time.Second, func() bool { return strings.Contains(e.log(), "nsfd.late: daemon state: state=fatal") })
	if n := strings.Count(e.log(), "nsfd.late: worker not ready in time; killing it"); n != 2 {
		t.Errorf("%d ready timeouts, want 2", n)
	}
}

func TestPythonWorkerReportsBusy(t *testing.T) {
	e := newEnv(t)
	e.write("py.ini", "command = "+filepath.Join(repoDir, "examples/python/echo.py")+"\nport = 127.0.0.1:0\ntype = notify\n"+
		"min_servers = 1\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 5\n")
	m := e.start()
	addr := m.addr("py")
	waitFor(t, "1 worker", 15*time.Second, func() bool { return len(m.workers("")) == 1 })
	release := hold(t, addr, 3)
	defer release()
	// 3 busy python workers plus 1 spare: the master learned busy/idle from the Python code.
	waitFor(t, "4 workers", 15*time.Second, func() bool { return len(m.workers("")) == 4 })
}

func TestSIGTTINRaisesMinServers(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 6\n"))
	m := e.start()
	m.addr("echo")
	waitFor(t, "2 workers", 15*time.Second, func() bool { return len(m.workers("echo")) == 2 })
	// Standard signals do not queue: wait for each one's effect before the next.
	for want := 3; want <= 4; want++ {
		m.cmd.Process.Signal(syscall.SIGTTIN)
		waitFor(t, strconv.Itoa(want)+" workers", 15*time.Second, func() bool { return len(m.workers("echo")) == want })
	}
	m.cmd.Process.Signal(syscall.SIGTTOU)
	waitFor(t, "scaled to 3 in the log", 15*time.Second, func() bool {
		return strings.Contains(e.log(), "scaled: min_servers=3 max_servers=7")
	})
}
