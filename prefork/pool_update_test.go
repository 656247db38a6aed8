package prefork

import (
	"context"
	"syscall"
	"testing"
	"time"
)

func TestPoolUpdateRollsAndKeepsOldWorkersIfNewOnesFail(t *testing.T) {
	p, l, _ := newTestPool(t, "pool-echo", func(c *Config) {
		c.Policy.MinServers = 2
		c.Policy.MaxSpareServers = 2
	})
	waitFor(t, "2 ready workers", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 2 })
	old := readyWorkers(status(t, p))
	cfg := p.cfg

	// A broken new configuration: the new workers fail, the old ones keep serving.
	bad := cfg
	bad.Env = []string{"NSFD_TEST_HELPER=pool-exit", "GORACE=atexit_sleep_ms=0"}
	if err := p.Update(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fatal", 10*time.Second, func() bool { return status(t, p).State == PoolFatal })
	for _, pid := range old {
		if syscall.Kill(pid, 0) != nil {
			t.Fatalf("old worker %d stopped although its replacement failed", pid)
		}
	}
	echoOnce(t, l.Addr, "old workers still serve")

	// A good one: every worker is new, and none was lost in between.
	if err := p.Update(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 new workers only", 10*time.Second, func() bool {
		st := status(t, p)
		if len(st.Workers) != 2 || len(readyWorkers(st)) != 2 {
			return false
		}
		for _, w := range st.Workers {
			if w.PID == old[0] || w.PID == old[1] {
				return false
			}
		}
		return true
	})
	echoOnce(t, l.Addr, "new workers serve")
}

// TestPoolRollsStayBounded: rolls faster than old workers leave never take
// the pool past twice max_servers processes.
func TestPoolRollsStayBounded(t *testing.T) {
	p, _, _ := newTestPool(t, "pool-stubborn", func(c *Config) {
		c.Policy = PolicyOptions{MinServers: 2, MaxServers: 3, MaxSpareServers: 2, MinChildTTL: time.Hour}
		c.GracefulTimeout = 300 * time.Millisecond // stubborn workers leave only when killed
	})
	waitFor(t, "2 ready workers", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 2 })
	most := 0
	for range 8 {
		if err := p.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the roll to start", 10*time.Second, func() bool {
			st := status(t, p)
			most = max(most, len(st.Workers))
			return len(readyWorkers(st)) >= 2
		})
	}
	waitFor(t, "the pool to settle", 10*time.Second, func() bool {
		st := status(t, p)
		most = max(most, len(st.Workers))
		return len(st.Workers) == 2
	})
	if most > 6 {
		t.Errorf("up to %d processes, want at most 2 × max_servers = 6", most)
	}
}
