//go:build linux

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/supervisor"
)

// TestSaturatedStatusWhenAllBusy: with max_servers workers all busy,
// `nsfd status` says the pool is saturated, in JSON and in text; a freed
// worker ends it.
func TestSaturatedStatusWhenAllBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	addr := m.addr("echo")
	saturated := func() bool {
		out, _, _ := e.nsfd("status", "echo", "--json")
		var st supervisor.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Daemons) != 1 {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return st.Daemons[0].Saturated
	}
	waitFor(t, "2 workers", 15*time.Second, func() bool { return len(m.workers("echo")) == 2 })
	if saturated() {
		t.Fatal("an idle pool is saturated")
	}
	release := hold(t, addr, 3) // 2 workers of one connection each, and one waiting in the backlog
	waitFor(t, "saturated", 10*time.Second, saturated)
	if out, _, _ := e.nsfd("status", "echo"); !strings.Contains(out, "saturated: all 2 workers busy") {
		t.Errorf("status text does not say saturated:\n%s", out)
	}
	release()
	waitFor(t, "not saturated", 10*time.Second, func() bool { return !saturated() })
}
