//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// TestFleetOf: the registry's rows grouped by node, the node's heartbeat
// its freshest daemon's, staleness judged against 3 heartbeats by the
// registry's clock.
func TestFleetOf(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	ep := func(addr string, tls bool) registry.Endpoint {
		return registry.Endpoint{Proto: registry.ProtoTCP, Address: addr, TLS: tls, ServerName: map[bool]string{true: "kv.test"}[tls]}
	}
	ds := []registry.Daemon{
		{Node: "b", Name: "kv", State: "running", MasterPID: 20, HeartbeatAt: now.Add(-20 * time.Second), Endpoints: []registry.Endpoint{ep("10.0.0.2:7100", true)}},
		{Node: "a", Name: "kv", State: "running", MasterPID: 10, HeartbeatAt: now.Add(-1 * time.Second), Endpoints: []registry.Endpoint{ep("10.0.0.1:7100", true)}},
		{Node: "a", Name: "echo", State: "stopping", MasterPID: 10, HeartbeatAt: now.Add(-3 * time.Second)},
		{Node: "a", Name: "web", State: "running", MasterPID: 10, HeartbeatAt: now.Add(-1 * time.Second),
			Endpoints: []registry.Endpoint{{Proto: registry.ProtoTCP, Address: "10.0.0.1:80", Unhealthy: true}}},
		{Node: "b", Name: "echo", State: "running", MasterPID: 21, HeartbeatAt: now.Add(time.Second)}, // a clock ahead: age 0
	}
	nodes := fleetOf(ds, now, 15*time.Second)
	if len(nodes) != 2 || nodes[0].Node != "a" || nodes[1].Node != "b" {
		t.Fatalf("nodes %+v", nodes)
	}
	a, b := nodes[0], nodes[1]
	if a.AgeMillis != 1000 || a.Stale || len(a.Daemons) != 3 || a.Daemons[0].Name != "echo" || a.Daemons[1].Name != "kv" ||
		!a.Daemons[2].Unhealthy || a.Daemons[1].Unhealthy ||
		len(a.MasterPIDs) != 1 || a.Daemons[0].Endpoints == nil {
		t.Fatalf("node a %+v", a)
	}
	if b.AgeMillis != 0 || b.Stale || !b.Daemons[1].Stale || b.Daemons[0].Stale || len(b.MasterPIDs) != 2 {
		t.Fatalf("node b %+v", b)
	}
	var out bytes.Buffer
	writeFleet(&out, nodes)
	for _, want := range []string{"NODE", "a     1s ago", "kv      running (stale)      tcp 10.0.0.2:7100 (tls kv.test)", "echo    stopping", "web     running (unhealthy)  tcp 10.0.0.1:80"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
	nodes[1].Stale = true
	nodes[1].HeartbeatAge = 20 * time.Second
	out.Reset()
	writeFleet(&out, nodes[1:])
	if !strings.Contains(out.String(), "20s ago (stale)") {
		t.Errorf("a stale node:\n%s", out.String())
	}
	out.Reset()
	writeFleet(&out, nil)
	if !strings.Contains(out.String(), "no node") {
		t.Errorf("no nodes: %q", out.String())
	}
}
