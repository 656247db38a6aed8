package main

// End-to-end tests of the registry: daemons register their real
// endpoints, resolve by name, and leave no stale row behind.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
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
