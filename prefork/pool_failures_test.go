package prefork

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestPoolGoesFatalAfterStartRetries(t *testing.T) {
	var mu sync.Mutex
	var states []PoolState
	p, _, out := newTestPool(t, "pool-exit", func(c *Config) {
		c.Observer = func(e Event) {
			if e.Kind == EventState {
				mu.Lock()
				states = append(states, e.State)
				mu.Unlock()
			}
		}
	})
	waitFor(t, "fatal", 10*time.Second, func() bool { return status(t, p).State == PoolFatal })
	st := status(t, p)
	if st.FailedStarts != 3 {
		t.Errorf("failed starts = %d, want 3", st.FailedStarts)
	}
	// One round of 3 workers, then one probe per retry.
	if st.Spawns != 3+2 {
		t.Errorf("spawns = %d, want 5", st.Spawns)
	}
	mu.Lock()
	if states[len(states)-1] != PoolFatal || !containsState(states, PoolBackoff) {
		t.Errorf("states %v: want backoff then fatal", states)
	}
	mu.Unlock()
	if len(out.all()) == 0 {
		t.Error("worker output was lost")
	}
	// A restart starts it again from scratch.
	if err := p.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fatal again", 10*time.Second, func() bool { return status(t, p).Spawns >= 10 })
}

func containsState(s []PoolState, want PoolState) bool {
	for _, x := range s {
		if x == want {
			return true
		}
	}
	return false
}

func TestPoolKillsWorkerNotReadyInTime(t *testing.T) {
	var mu sync.Mutex
	causes := map[ExitCause]int{}
	p, _, _ := newTestPool(t, "pool-silent", func(c *Config) {
		c.Policy.MinServers = 1
		c.Policy.MaxSpareServers = 1
		c.Policy.MaxServers = 2
		c.ReadyTimeout = 100 * time.Millisecond
		c.Observer = func(e Event) {
			if e.Kind == EventExit {
				mu.Lock()
				causes[e.Cause]++
				mu.Unlock()
			}
		}
	})
	waitFor(t, "fatal", 10*time.Second, func() bool { return status(t, p).State == PoolFatal })
	waitFor(t, "3 ready-timeout exits", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return causes[CauseReadyTimeout] >= 3
	})
	if st := status(t, p); st.Spawns != 3 {
		t.Errorf("spawns = %d, want 3", st.Spawns)
	}
}

func TestPoolStopKillsStubbornWorkerAfterGrace(t *testing.T) {
	p, _, _ := newTestPool(t, "pool-stubborn", func(c *Config) {
		c.Policy.MinServers = 1
		c.Policy.MaxSpareServers = 1
		c.Policy.MaxServers = 2
		c.GracefulTimeout = 200 * time.Millisecond
	})
	waitFor(t, "ready", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 1 })
	pid := readyWorkers(status(t, p))[0]
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("stopped after %v, before graceful_timeout", d)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("worker %d still alive", pid)
	}
	if st := status(t, p); st.State != PoolStopped {
		t.Errorf("state %s", st.State)
	}
}
