package prefork

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolHoldsNoThreadPerWorker: the pump waits for workers on their
// pidfds in one epoll_wait instead of blocking a thread in wait(2) for each.
func TestPoolHoldsNoThreadPerWorker(t *testing.T) {
	threads := func() int {
		b, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		return -1
	}
	before := threads()
	var spawned atomic.Int32
	newTestPool(t, "", func(c *Config) {
		c.Command = []string{"/bin/sleep", "1000"}
		c.Env = nil
		c.Notify = false
		c.Policy = PolicyOptions{MinServers: 100, MaxServers: 101, MaxSpareServers: 1}
		c.Observer = func(e Event) {
			if e.Kind == EventSpawn {
				spawned.Add(1)
			}
		}
	})
	// Counted as they start: a Status call waits for the whole round, which
	// takes seconds on a loaded machine.
	waitFor(t, "100 workers", time.Minute, func() bool { return spawned.Load() == 100 })
	if after := threads(); after-before > 30 {
		t.Errorf("%d threads for 100 workers (%d before): a thread per worker", after, before)
	}
}

// TestPoolHoldsNoGoroutinePerWorker: one pump reads every worker's output
// and sees every exit: no goroutine a worker, and none left once the pool
// has stopped.
func TestPoolHoldsNoGoroutinePerWorker(t *testing.T) {
	if testBackend != BackendPump {
		t.Skip("the portable backend reads each worker's pipes from two goroutines of its own")
	}
	before := runtime.NumGoroutine()
	var spawned atomic.Int32
	p, _, _ := newTestPool(t, "", func(c *Config) {
		c.Command = []string{"/bin/sleep", "1000"}
		c.Env = nil
		c.Notify = false
		c.Policy = PolicyOptions{MinServers: 200, MaxServers: 201, MaxSpareServers: 1}
		c.Observer = func(e Event) {
			if e.Kind == EventSpawn {
				spawned.Add(1)
			}
		}
	})
	// Counted as they start: a Status call waits for the whole round.
	waitFor(t, "200 workers", time.Minute, func() bool { return spawned.Load() == 200 })
	if after := runtime.NumGoroutine(); after-before > 10 {
		t.Errorf("%d goroutines for 200 workers (%d before): a goroutine per worker", after, before)
	}
	stopPool(t, p)
	waitFor(t, "the pool's goroutines to end", 10*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}

// TestPoolStopLeavesNoFD: once a pool has stopped, the pipes and pidfds of
// its workers, its pump's and its notify socket are closed. (The workers'
// /dev/null stays: one for the process, opened before counting.)
func TestPoolStopLeavesNoFD(t *testing.T) {
	if _, err := devNull(); err != nil {
		t.Fatal(err)
	}
	fds := func() int {
		defer holdReaper()()
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	p, l, out := newTestPool(t, "pool-echo", nil)
	waitFor(t, "3 ready workers", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 3 })
	stopPool(t, p)
	l.Close()
	// The portable backend's readers close a stopped worker's pipes as they
	// read its end of file, which may come just after the pool is done.
	after := fds()
	for deadline := time.Now().Add(10 * time.Second); after != before && time.Now().Before(deadline); after = fds() {
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
	if after != before {
		t.Errorf("%d fds open after stop, %d before", after, before)
	}
	if n := len(out.all()); n != 3 {
		t.Errorf("%d lines of output, want each worker's start line", n)
	}
}

func stopPool(t *testing.T, p *Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		st := status(t, p)
		t.Fatalf("stop: %v; %d workers left: %+v", err, len(st.Workers), st.Workers[:min(len(st.Workers), 5)])
	}
}
