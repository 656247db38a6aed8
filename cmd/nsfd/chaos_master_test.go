//go:build linux

package main

// Fault injection, scenario 3: the master killed with -9 under load and
// started again (the two forms and the report: chaos_test.go).

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
)

// TestChaosMasterKilled kills the master with -9 under load and starts it
// again on the same fixed port: no worker outlives it by more than a second
// (they have a parent-death signal), nothing holds the old listening socket,
// the new master rebinds the port and replaces the registry rows, and the
// clients of the old master are served by the new one.
func TestChaosMasterKilled(t *testing.T) {
	sc := chaosParams()
	e := newEnv(t)
	// A port held for the test: between the kill and the new master, a
	// freed one could be given to another test process.
	addr := testport.Reserve(t)
	e.setRegistry("[registry]\nheartbeat = 200ms\n")
	e.write("echo.ini", "command = "+filepath.Join(binDir, "echo")+"\nport = "+addr+"\ntype = notify\n"+
		"min_servers = 4\nmax_servers = 8\nmin_spare_servers = 1\nmax_spare_servers = 3\nstart_seconds = 10ms\n")
	m := e.start()
	if got := m.addr("echo"); got != addr {
		t.Fatalf("echo listens on %s, want %s", got, addr)
	}
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready workers", 15*time.Second, func() bool { return len(c.ready("echo", nil)) >= 4 })
	waitFor(t, "registered", 10*time.Second, func() bool { _, _, code := e.nsfd("resolve", "echo"); return code == 0 })

	l := startLoad(addr, 8)
	waitFor(t, "load running", 10*time.Second, func() bool { return l.ok.Load() >= 100 })
	old := m.workers("")
	listener := sockets(old[0])[3]
	if listener == "" {
		t.Fatalf("worker %d has no listening socket at fd 3", old[0])
	}
	failedBefore := l.failed.Load()

	t0 := time.Now()
	if err := m.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Every worker holds the listening socket, those started since old was
	// taken too: once no process holds it, none is left.
	var orphans []int
	gone := pollUntil(time.Second, time.Millisecond, func() bool {
		orphans = socketHolders(listener)
		for _, pid := range old {
			if alive(pid) && !slices.Contains(orphans, pid) {
				orphans = append(orphans, pid)
			}
		}
		return len(orphans) == 0
	})
	allGone := time.Since(t0)
	if !gone {
		t.Fatalf("processes %v (workers, or holding the listening socket %s) still alive 1s after the master was killed", orphans, listener)
	}
	<-m.exited

	t1 := time.Now()
	m2 := e.start()
	pid2 := m2.cmd.Process.Pid
	var rebound time.Duration
	waitFor(t, "the new master to serve "+addr, 15*time.Second, func() bool {
		if tryEcho(addr, "after the crash") != nil {
			return false
		}
		rebound = time.Since(t1)
		return true
	})
	gap := time.Since(t0)
	failedGap := l.failed.Load() - failedBefore

	// No stale row: once the new master has registered, every row is its own.
	var reregistered time.Duration
	waitFor(t, "the new master's rows", 15*time.Second, func() bool {
		rows := e.rows("sqlite", e.sqlite())
		for _, d := range rows {
			if d.Name == "echo" && d.MasterPID == pid2 && len(d.Endpoints) == 1 && d.Endpoints[0].Address == addr {
				reregistered = time.Since(t1)
				return true
			}
		}
		return false
	})
	for _, d := range e.rows("sqlite", e.sqlite()) {
		if d.MasterPID != pid2 {
			t.Errorf("stale registry row of master %d (new master %d): %+v", d.MasterPID, pid2, d)
		}
	}
	if out, _, code := e.nsfd("resolve", "echo"); code != 0 || out != "tcp "+addr+"\n" {
		t.Errorf("resolve echo after the restart = %q (%d), want tcp %s", out, code, addr)
	}
	if !strings.Contains(e.log(), "removed what a previous master on this node left in the registry") {
		t.Error("the clean-up of the killed master's rows is not in the log")
	}

	// The clients of the old master are served by the new one, without failures.
	okAt := l.ok.Load()
	waitFor(t, "the load to recover", 15*time.Second, func() bool { return l.ok.Load() >= okAt+50 })
	failedAfter, okAfter := l.failed.Load(), l.ok.Load()
	waitFor(t, "the load to run on the new master", 15*time.Second, func() bool { return l.ok.Load() >= okAfter+300 })
	ok, failed := l.halt()

	chaosReport(t, "kill -9 the master", sc,
		fig("kill → every old worker dead", allGone.Round(100*time.Microsecond).String(), "≤ 1 s", metMissed(allGone <= time.Second)),
		fig("start → new master serving the same port", rebound.Round(time.Millisecond).String(), "", ""),
		fig("start → registry rows replaced", reregistered.Round(time.Millisecond).String(), "", ""),
		fig("requests failed in the gap ("+gap.Round(time.Millisecond).String()+")", strconv.FormatInt(failedGap, 10), "counted", ""),
		fig("requests ok / failed after the restart", fmt.Sprintf("%d / %d", ok-okAfter, failed-failedAfter), "0 failed", metMissed(failed == failedAfter)),
	)
	if failed != failedAfter {
		t.Errorf("%d requests failed after the new master served; want 0: %v", failed-failedAfter, l.errs)
	}
}

// pollUntil checks cond every interval until it holds or d has passed,
// and reports whether it held.
func pollUntil(d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// socketHolders returns the pids of the processes holding socket (as
// "socket:[inode]") open.
func socketHolders(socket string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || !alive(pid) {
			continue
		}
		for _, s := range sockets(pid) {
			if s == socket {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
