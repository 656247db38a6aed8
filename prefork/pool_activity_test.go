package prefork

import (
	"strconv"
	"testing"
	"time"
)

// requestsNote hands the pool pid's REQUESTS=n at t0 + d, as its reader
// would.
func (cp *clockPool) requestsNote(t *testing.T, pid, n int, d time.Duration) {
	t.Helper()
	m, err := ParseMessage([]byte("REQUESTS=" + strconv.Itoa(n)))
	if err != nil {
		t.Fatal(err)
	}
	cp.clock = cp.t0.Add(d)
	cp.handleNotes([]note{{pid: pid, msg: m}}, cp.clock)
}

// retired counts the workers the policy has retired.
func (cp *clockPool) retired() int {
	n := 0
	for _, w := range cp.workers {
		if w.cause == CauseRetired {
			n++
		}
	}
	return n
}

// TestPoolRequestsCountIsActivity: a worker that reports REQUESTS=n and
// never BUSY — one serving many connections at once, below its limit, as
// worker.Serve reports — keeps its pool active. The quiet trim and, on
// demand, idle_timeout count from the last time a count moved; a count
// repeated unchanged is no request.
func TestPoolRequestsCountIsActivity(t *testing.T) {
	t.Run("quiet trim", func(t *testing.T) {
		cp := newClockPool(t, func(c *Config) {
			c.Policy = PolicyOptions{MinServers: 1, MaxServers: 5, MinSpareServers: 1, MaxSpareServers: 4, MinChildTTL: 10 * time.Second}
			c.Watchdog = 0
		})
		for pid := 1; pid <= 3; pid++ {
			cp.addWorker(pid, true)
		}
		cp.lastActive = cp.t0
		for s := 1; s <= 30; s++ {
			cp.requestsNote(t, 1, 100*s, time.Duration(s)*time.Second)
			cp.at(time.Duration(s) * time.Second)
			if n := cp.retired(); n > 0 {
				t.Fatalf("%d workers retired at %ds while worker 1's count moved every second", n, s)
			}
		}
		cp.requestsNote(t, 1, 3000, 35*time.Second) // unchanged: no request
		cp.at(39 * time.Second)
		if n := cp.retired(); n > 0 {
			t.Fatalf("%d workers retired 9s after the last request (min_child_ttl 10s)", n)
		}
		cp.at(40 * time.Second)
		if n := cp.retired(); n != 2 {
			t.Fatalf("%d workers retired 10s after the last request, want 2 (down to min_spare_servers 1)", n)
		}
	})
	t.Run("on demand", func(t *testing.T) {
		cp := newClockPool(t, func(c *Config) {
			c.Policy = PolicyOptions{MinServers: 0, MaxServers: 2, MaxSpareServers: 1, MinChildTTL: time.Hour}
			c.IdleTimeout = 2 * time.Second
			c.Watchdog = 0
		})
		cp.addWorker(1, true)
		cp.dormant = false // woken by a connection at t0
		cp.activeAt = cp.t0
		for s := 1; s <= 10; s++ {
			cp.requestsNote(t, 1, s, time.Duration(s)*time.Second)
			cp.at(time.Duration(s) * time.Second)
			if cp.retired() > 0 || cp.dormant {
				t.Fatalf("retired at %ds while the worker's count moved every second (idle_timeout 2s)", s)
			}
		}
		cp.requestsNote(t, 1, 10, 11*time.Second) // unchanged: no request
		cp.at(11 * time.Second)
		if cp.retired() > 0 {
			t.Fatal("retired 1s after the last request (idle_timeout 2s)")
		}
		cp.at(12 * time.Second)
		if cp.retired() != 1 || !cp.dormant {
			t.Fatalf("not retired 2s after the last request: retired %d, dormant %v", cp.retired(), cp.dormant)
		}
	})
}
