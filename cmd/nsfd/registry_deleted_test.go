//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestRegistryFileDeletedIsRecreated: an operator deletes the SQLite
// registry under a running master. The master notices at its next heartbeat
// (the file at the path is no longer the one it opened), opens it anew and
// registers every daemon again, and says so in the log; `nsfd resolve`
// finds the daemon again within a few heartbeats, not after a restart.
func TestRegistryFileDeletedIsRecreated(t *testing.T) {
	e := newEnv(t)
	e.setRegistry("[registry]\nheartbeat = 200ms\n")
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	addr := m.addr("echo")
	resolves := func() bool {
		out, _, code := e.nsfd("resolve", "echo")
		return code == 0 && out == "tcp "+addr+"\n"
	}
	waitFor(t, "echo registered", 10*time.Second, resolves)

	if err := os.Remove(e.sqlite()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "echo registered in a new registry file", 5*time.Second, resolves)
	if !strings.Contains(e.log(), "the registry database was deleted or replaced; opening it anew and registering every daemon again") {
		t.Errorf("the log does not say what happened:\n%s", e.log())
	}
	if _, err := os.Stat(e.sqlite()); err != nil {
		t.Errorf("no registry file: %v", err)
	}
	if code := m.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
