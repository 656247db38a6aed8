//go:build linux

package main

// End-to-end tests of the registry: daemons register their real
// endpoints, resolve by name, and leave no stale row behind.

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/pgtest"
)

// rows lists the registry the env's nsfd.ini names.
func (e *env) rows(typ, dsn string) []registry.Daemon {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := registry.Open(ctx, typ, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer reg.Close()
	ds, err := reg.List(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

func (e *env) sqlite() string { return filepath.Join(e.dir, "var", "registry.db") }

// setRegistry rewrites nsfd.ini with a [registry] section.
func (e *env) setRegistry(section string) {
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n"+section)
}

func TestRegistryFollowsDaemons(t *testing.T) {
	e := newEnv(t)
	e.setRegistry("[registry]\nheartbeat = 200ms\n")
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	e.write("other.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	addr := m.addr("echo")

	var out string
	waitFor(t, "nsfd resolve echo", 10*time.Second, func() bool {
		o, _, code := e.nsfd("resolve", "echo")
		out = o
		return code == 0
	})
	if out != "tcp "+addr+"\n" {
		t.Fatalf("nsfd resolve echo = %q, want %q", out, "tcp "+addr+"\n")
	}
	echo(t, strings.Fields(out)[1], "found by name")
	// The row holds the real port and the node, the endpoint its address.
	var found bool
	for _, d := range e.rows("sqlite", e.sqlite()) {
		if d.Name == "echo" {
			found = true
			if d.State != "running" || d.Encoding != "json" || d.MasterPID != m.cmd.Process.Pid || len(d.Endpoints) != 1 || d.Endpoints[0].Address != addr {
				t.Errorf("registry row %+v", d)
			}
		}
	}
	if !found {
		t.Fatal("no echo row")
	}
	fi, err := os.Stat(e.sqlite())
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("registry file mode %v %v, want 0640", fi.Mode(), err)
	}
	if _, errOut, code := e.nsfd("resolve", "nope"); code != 1 || !strings.Contains(errOut, `"nope": not registered`) {
		t.Errorf("resolve nope: %d %q", code, errOut)
	}

	// Removing the file unregisters the daemon.
	os.Remove(filepath.Join(e.etc, "echo.ini"))
	waitFor(t, "echo unregistered", 10*time.Second, func() bool {
		for _, d := range e.rows("sqlite", e.sqlite()) {
			if d.Name == "echo" {
				return false
			}
		}
		return true
	})
	// Stopping the master unregisters the rest.
	if code := m.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if rows := e.rows("sqlite", e.sqlite()); len(rows) != 0 {
		t.Errorf("rows left after the master stopped: %+v", rows)
	}
}

func TestRegistryAfterMasterCrash(t *testing.T) {
	e := newEnv(t)
	e.setRegistry("[registry]\nheartbeat = 200ms\n")
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	old := m.addr("echo")
	waitFor(t, "registered", 10*time.Second, func() bool { _, _, code := e.nsfd("resolve", "echo"); return code == 0 })
	m.cmd.Process.Kill()
	<-m.exited

	// The dead endpoint stops resolving once the heartbeat is stale (3 × 200ms).
	waitFor(t, "stale", 10*time.Second, func() bool {
		_, errOut, code := e.nsfd("resolve", "echo")
		return code == 1 && strings.Contains(errOut, "stale")
	})
	// A new master on the same node removes the old rows and registers anew.
	os.Remove(e.logFile())
	m2 := e.start()
	addr := m2.addr("echo")
	waitFor(t, "registered again", 10*time.Second, func() bool {
		out, _, code := e.nsfd("resolve", "echo")
		return code == 0 && out == "tcp "+addr+"\n"
	})
	for _, d := range e.rows("sqlite", e.sqlite()) {
		if d.MasterPID != m2.cmd.Process.Pid {
			t.Errorf("row of the crashed master survived: %+v", d)
		}
		for _, ep := range d.Endpoints {
			if ep.Address == old && old != addr {
				t.Errorf("dead endpoint %s still registered", old)
			}
		}
	}
	if !strings.Contains(e.log(), "removed what a previous master on this node left in the registry") {
		t.Error("the clean-up of the crashed master's rows is not in the log")
	}
}

// pg is one PostgreSQL cluster for the package's tests, started on first use.
var pg = pgtest.Shared()

func TestRegistryPostgresTwoNodes(t *testing.T) {
	dsn := pg.Get(t).NewDatabase(t)
	reg := "[registry]\ntype = postgres\ndsn = " + dsn + "\nheartbeat = 500ms\n"
	conf := echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	a, b := newEnv(t), newEnv(t)
	a.write("nsfd.ini", "[nsfd]\nnode_name = alpha\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\n"+reg)
	b.write("nsfd.ini", "[nsfd]\nnode_name = beta\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\n"+reg)
	a.write("echo.ini", conf)
	b.write("echo.ini", conf)
	ma, mb := a.start(), b.start()
	addrA, addrB := ma.addr("echo"), mb.addr("echo")

	// Each node resolves both, its own first.
	for _, c := range []struct {
		e           *env
		first, then string
	}{{a, addrA, addrB}, {b, addrB, addrA}} {
		want := "tcp " + c.first + "\ntcp " + c.then + "\n"
		var out string
		waitFor(t, "both nodes registered", 15*time.Second, func() bool {
			out, _, _ = c.e.nsfd("resolve", "echo")
			return out == want
		})
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			echo(t, strings.Fields(line)[1], "via postgres")
		}
	}
	if !strings.Contains(a.log(), "registry=\"postgres host=") || strings.Contains(a.log(), "password") {
		t.Error("registry line missing from the log")
	}
	// One master stops: its rows go, the other node's stay.
	if code := ma.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, d := range a.rows("postgres", dsn) {
		if d.Node == "alpha" {
			t.Errorf("alpha's row survived its master: %+v", d)
		}
	}
	if out, _, code := a.nsfd("resolve", "echo"); code != 0 || out != "tcp "+addrB+"\n" {
		t.Errorf("after alpha stopped, resolve from alpha = %q (%d), want beta's endpoint", out, code)
	}
}

func TestRegistryPostgresDownDaemonsKeepServing(t *testing.T) {
	srv := pgtest.New(t) // its own cluster: this test stops it
	dsn := srv.DSN()
	e := newEnv(t)
	e.setRegistry("[registry]\ntype = postgres\ndsn = " + dsn + "\nheartbeat = 200ms\n")
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "registered", 10*time.Second, func() bool { _, _, code := e.nsfd("resolve", "echo"); return code == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failure in the log", 10*time.Second, func() bool {
		return strings.Contains(e.log(), "registry unreachable")
	})
	// Daemons keep serving, and a worker replaced meanwhile is no problem.
	for i := range 5 {
		echo(t, addr, "registry down "+strconv.Itoa(i))
	}
	pids := m.workers("echo")
	syscall.Kill(pids[0], syscall.SIGKILL)
	waitFor(t, "replacement", 10*time.Second, func() bool { ws := m.workers("echo"); return len(ws) == 1 && ws[0] != pids[0] })
	replacement := m.workers("echo")[0]
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The row from before the outage still resolves for a moment (its
	// heartbeat is not stale yet) and names the killed worker: what the test
	// waits for is the master writing again, which only its re-registration
	// does — the worker started during the outage in the registry.
	waitFor(t, "registered again, with the worker started during the outage", 15*time.Second, func() bool {
		ws, err := registryWorkers(ctx, "postgres", dsn, "echo")
		return err == nil && len(ws) == 1 && ws[0].PID == replacement
	})
	if !strings.Contains(e.log(), "registry reachable again") {
		t.Error("recovery not logged")
	}
	if out, errOut, code := e.nsfd("resolve", "echo"); code != 0 || out != "tcp "+addr+"\n" {
		t.Errorf("resolve after the outage: %d %q %q; want tcp %s", code, out, errOut, addr)
	}
	if n := strings.Count(e.log(), "registry unreachable"); n > 3 {
		t.Errorf("the registry failure was logged %d times; want once per change", n)
	}
}

// registryWorkers reads a daemon's worker rows on this host's node; unlike
// env.rows it returns the error, for polling a registry that may be down.
func registryWorkers(ctx context.Context, typ, dsn, daemon string) ([]registry.Worker, error) {
	node, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reg, err := registry.Open(ctx, typ, dsn)
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	return reg.Workers(ctx, node, daemon)
}
