//go:build linux

package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOnDemandDaemon: with min_servers = 0 no worker runs until a client
// connects; that first connection waits in the backlog and is answered;
// after idle_timeout without a request the workers are retired back to
// none, and the next client starts one again.
func TestOnDemandDaemon(t *testing.T) {
	e := newEnv(t)
	e.write("lazy.ini", echoConf("min_servers = 0\nmax_servers = 2\nidle_timeout = 1s\n"))
	e.write("app.ini", echoConf("min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\nrequires = lazy\n"))
	m := e.start()
	addr := m.addr("lazy")
	e.waitReady()
	waitFor(t, "lazy idle on demand", 10*time.Second, func() bool {
		d := e.status().daemon("lazy")
		return d != nil && d.State == "idle (on demand)"
	})
	// An on-demand daemon counts as running: what requires it starts.
	waitFor(t, "app running", 15*time.Second, func() bool {
		d := e.status().daemon("app")
		return d != nil && d.State == "running"
	})
	if n := len(e.pids("lazy")); n != 0 {
		t.Fatalf("%d workers before any client", n)
	}
	if out, _, _ := e.nsfd("resolve", "lazy"); out == "" {
		t.Errorf("an idle on-demand daemon does not resolve")
	}
	for round := range 2 {
		start := time.Now()
		echo(t, addr, "wake up")
		t.Logf("round %d: first connection answered in %v", round, time.Since(start).Round(time.Millisecond))
		if n := len(e.pids("lazy")); n == 0 {
			t.Fatalf("round %d: answered, but no worker in status", round)
		}
		waitFor(t, "workers retired after idle_timeout", 15*time.Second, func() bool {
			d := e.status().daemon("lazy")
			return d != nil && d.State == "idle (on demand)" && len(d.Workers) == 0 && len(m.workers("echo")) == 1 // app's
		})
	}
}

// TestOnDemandStaysUpUnderTraffic: a worker serving many connections at
// once (examples/echo at its default concurrency) is never full, so it
// sends no BUSY=1, only its count of requests (REQUESTS=n, about once a
// second): that is activity too, and an on-demand daemon under steady
// traffic keeps its worker past idle_timeout; once the traffic stops,
// idle_timeout retires it.
func TestOnDemandStaysUpUnderTraffic(t *testing.T) {
	e := newEnv(t)
	e.write("lazy.ini", "command = "+filepath.Join(binDir, "echo")+"\nport = 127.0.0.1:0\ntype = notify\n"+
		"min_servers = 0\nmax_servers = 2\nidle_timeout = 2s\n")
	m := e.start()
	addr := m.addr("lazy")
	echo(t, addr, "wake up")
	first := e.pids("lazy")
	if len(first) == 0 {
		t.Fatal("answered, but no worker in status")
	}
	// A connection every 100ms for 5s: two and a half idle_timeouts.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); <-tick.C {
		echo(t, addr, "still here")
	}
	if strings.Contains(e.log(), "retiring every worker") {
		t.Fatalf("workers retired under traffic; log:\n%s", e.log())
	}
	now := e.pids("lazy")
	for pid := range first {
		if !now[pid] {
			t.Fatalf("worker %d gone under traffic (workers then %v, now %v)", pid, first, now)
		}
	}
	waitFor(t, "workers retired after idle_timeout", 15*time.Second, func() bool {
		d := e.status().daemon("lazy")
		return d != nil && d.State == "idle (on demand)" && len(d.Workers) == 0
	})
}
