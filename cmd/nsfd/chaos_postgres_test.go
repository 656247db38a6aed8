//go:build linux

package main

// Fault injection, scenario 5: the PostgreSQL registry stopped under load
// and started again (the two forms and the report: chaos_test.go).

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry/pgtest"
)

// TestChaosPostgresRestart stops the PostgreSQL registry under load and
// starts it again: the daemons keep serving without a failed request, a
// rolling restart and a new daemon need no registry, and once it is back
// every daemon resolves again, the new one included.
func TestChaosPostgresRestart(t *testing.T) {
	sc := chaosParams()
	srv := pgtest.New(t) // its own cluster: this test stops it
	e := newEnv(t)
	e.setRegistry("[registry]\ntype = postgres\ndsn = " + srv.DSN() + "\nheartbeat = 200ms\n")
	e.write("echo.ini", echoConf("min_servers = 4\nmax_servers = 8\nmin_spare_servers = 1\nmax_spare_servers = 3\nstart_seconds = 10ms\n"))
	m := e.start()
	addr := m.addr("echo")
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready workers", 15*time.Second, func() bool { return len(c.ready("echo", nil)) >= 4 })
	waitFor(t, "registered", 10*time.Second, func() bool { _, _, code := e.nsfd("resolve", "echo"); return code == 0 })

	l := startLoad(addr, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	down := time.Now()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failure in the log", 15*time.Second, func() bool { return strings.Contains(e.log(), "registry unreachable") })

	// While it is down: a rolling restart, and a new daemon.
	before := c.pids("echo")
	if out, errOut, code := e.nsfd("restart", "echo"); code != 0 {
		t.Fatalf("nsfd restart: %d %s %s", code, out, errOut)
	}
	waitFor(t, "the restart to roll every worker", 20*time.Second, func() bool {
		now := c.ready("echo", before)
		return len(now) >= 4 && len(c.pids("echo")) == len(now)
	})
	chaosWriteFile(t, e, "late.ini", echoConf("min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n"))
	var lateAddr string
	waitFor(t, "the new daemon to serve", 15*time.Second, func() bool {
		d := c.status().daemon("late")
		if d == nil || d.State != "running" || len(d.Listeners) == 0 {
			return false
		}
		lateAddr = strings.Fields(d.Listeners[0])[1]
		return tryEcho(lateAddr, "registry down") == nil
	})

	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now() // PostgreSQL accepts connections
	outage := up.Sub(down)
	var back time.Duration
	waitFor(t, "both daemons to resolve again", 30*time.Second, func() bool {
		a, _, ca := e.nsfd("resolve", "echo")
		b, _, cb := e.nsfd("resolve", "late")
		back = time.Since(up)
		return ca == 0 && cb == 0 && a == "tcp "+addr+"\n" && b == "tcp "+lateAddr+"\n"
	})
	ok, failed := l.halt()
	for _, d := range e.rows("postgres", srv.DSN()) {
		if d.MasterPID != m.cmd.Process.Pid {
			t.Errorf("registry row of another master: %+v", d)
		}
	}
	if !strings.Contains(e.log(), "registry reachable again") {
		t.Error("recovery not logged")
	}
	chaosReport(t, "PostgreSQL registry restarted", sc,
		fig("registry down (a rolling restart and a new daemon meanwhile)", outage.Round(time.Millisecond).String(), "", ""),
		fig("PostgreSQL accepting again → every daemon resolves (`nsfd resolve`)", back.Round(time.Millisecond).String(), "", ""),
		fig("requests ok / failed", fmt.Sprintf("%d / %d", ok, failed), "0 failed", metMissed(failed == 0)),
	)
	if failed > 0 {
		t.Errorf("%d requests failed, want 0: %v", failed, l.errs)
	}
	if ok == 0 {
		t.Error("no request succeeded")
	}
}
