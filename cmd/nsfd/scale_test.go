//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
	"github.com/nsfd/nsfd/supervisor"
)

// Issue 16, scaling and busy ports, as a user types it: a scale survives
// unrelated edits of the daemon's file and shows in status; scale 0 stops
// the workers and keeps the listener; a busy port is waited for.

// statusOf is `nsfd status NAME --json`'s daemon, and the exit code.
func (e *env) statusOf(name string) (supervisor.DaemonStatus, int) {
	e.t.Helper()
	out, errOut, code := e.nsfd("status", name, "--json")
	var st supervisor.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Daemons) != 1 {
		e.t.Fatalf("status %s --json: exit %d, %v\n%s%s", name, code, err, out, errOut)
	}
	return st.Daemons[0], code
}

// scaleConf is an echo daemon of min_servers 1, max_servers 3, then extra.
func scaleConf(extra string) string {
	return echoConf("min_servers = 1\nmax_servers = 3\n" + extra)
}

// TestScaleSurvivesAnUnrelatedEdit: `nsfd scale echo +1` is kept when the
// file's environment changes (its workers roll onto it at the scaled
// sizes), shows in status as scaled from the file's sizes, and is dropped
// — logged — when the file changes max_servers.
func TestScaleSurvivesAnUnrelatedEdit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("echo.ini", scaleConf(""))
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	if out, errOut, code := e.nsfd("scale", "echo", "+1", "--wait"); code != 0 || !strings.Contains(out, "min_servers 2, max_servers 4") {
		t.Fatalf("scale +1 --wait: exit %d, %q %q", code, out, errOut)
	}
	e.write("echo.ini", scaleConf("# an unrelated edit\n[env]\nGREETING = hi\n"))
	// Applied by this reload or by the master's own, on the file's change.
	if out, _, code := e.nsfd("reload"); code != 0 {
		t.Fatalf("reload: exit %d, %q", code, out)
	}
	d, code := e.statusOf("echo")
	if code != 0 || d.Policy.MinServers != 2 || d.Policy.MaxServers != 4 || d.ScaledFrom == nil ||
		*d.ScaledFrom != (supervisor.ScaledFrom{MinServers: 1, MaxServers: 3}) {
		t.Fatalf("after an env change: exit %d, policy %+v, scaled_from %+v; want 2/4 scaled from 1/3", code, d.Policy, d.ScaledFrom)
	}
	waitFor(t, "2 workers at the scaled size", 15*time.Second, func() bool {
		d, _ := e.statusOf("echo")
		return d.State == "running" && len(d.Workers) == 2
	})
	out, _, _ := e.nsfd("status", "echo")
	if !strings.Contains(out, "scaled from the file's 1/3 to 2/4") || !strings.Contains(out, "2/4") {
		t.Errorf("status text does not show the scale:\n%s", out)
	}
	echo(t, addr, "scaled")

	e.write("echo.ini", strings.Replace(scaleConf("[env]\nGREETING = hi\n"), "max_servers = 3", "max_servers = 4", 1))
	if _, _, code := e.nsfd("reload"); code != 0 {
		t.Fatalf("reload: exit %d", code)
	}
	d, _ = e.statusOf("echo")
	if d.Policy.MinServers != 1 || d.Policy.MaxServers != 4 || d.ScaledFrom != nil {
		t.Errorf("after max_servers changed: policy %+v, scaled_from %+v; want the file's 1/4, not scaled", d.Policy, d.ScaledFrom)
	}
	if out, _, _ := e.nsfd("status", "echo"); strings.Contains(out, "scaled from") {
		t.Errorf("status still shows a scale:\n%s", out)
	}
	waitFor(t, "the log to say the scale was dropped", 5*time.Second, func() bool {
		return strings.Contains(e.log(), "scale dropped: the file wins")
	})
}

// TestScaleToZero: `nsfd scale echo 0 --wait` leaves no worker process, the
// master keeps the port bound (no one else can bind it; a client connects
// and waits, unserved, and starts nothing), status says stopped and why
// (exit 3); `scale echo 2` serves the waiting client; 0 then `start` brings
// it back.
func TestScaleToZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("echo.ini", scaleConf(""))
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	waitFor(t, "a worker", 15*time.Second, func() bool { return len(m.workers("echo")) == 1 })
	before := m.workers("echo")

	if out, errOut, code := e.nsfd("scale", "echo", "0", "--wait"); code != 0 || !strings.Contains(out, "min_servers 0, max_servers 0") {
		t.Fatalf("scale 0 --wait: exit %d, %q %q", code, out, errOut)
	}
	if w := m.workers(""); len(w) != 0 {
		t.Errorf("worker processes left after scale 0: %v", w)
	}
	for _, pid := range before {
		if alive(pid) {
			t.Errorf("worker %d still alive after scale 0", pid)
		}
	}
	// The master holds the port: nobody else can bind it.
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("%s is free after scale 0: the master closed its listener", addr)
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind %s: %v, want address in use", addr, err)
	}
	d, code := e.statusOf("echo")
	if code != 3 || d.State != "stopped" || !strings.Contains(d.Reason, "scaled to 0") || len(d.Listeners) != 1 ||
		d.Policy.MaxServers != 0 || d.ScaledFrom == nil || d.ScaledFrom.MinServers != 1 {
		t.Fatalf("status after scale 0: exit %d, %+v", code, d)
	}
	out, _, _ := e.nsfd("status")
	if !strings.Contains(out, "scaled to 0") || !strings.Contains(out, "0/0") {
		t.Errorf("status text after scale 0:\n%s", out)
	}
	// A client connects (the backlog) and is not served; nothing starts.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to a daemon scaled to 0: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "waited\n")
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	rd := bufio.NewReader(c)
	if line, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("a daemon scaled to 0 answered %q", line)
	}
	if w := m.workers(""); len(w) != 0 {
		t.Errorf("a connection started workers of a daemon scaled to 0: %v", w)
	}

	if out, errOut, code := e.nsfd("scale", "echo", "2", "--wait"); code != 0 || !strings.Contains(out, "min_servers 2, max_servers 4") {
		t.Fatalf("scale 2 --wait: exit %d, %q %q", code, out, errOut)
	}
	if n := len(m.workers("echo")); n < 2 {
		t.Errorf("%d workers after scale 2 --wait, want 2", n)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := rd.ReadString('\n'); err != nil || line != "waited\n" {
		t.Errorf("the client that waited in the backlog: %q, %v", line, err)
	}

	if _, _, code := e.nsfd("scale", "echo", "0", "--wait"); code != 0 {
		t.Fatalf("scale 0 again: exit %d", code)
	}
	if out, errOut, code := e.nsfd("start", "echo", "--wait"); code != 0 {
		t.Fatalf("start --wait: exit %d, %q %q", code, out, errOut)
	}
	d, code = e.statusOf("echo")
	if code != 0 || d.State != "running" || d.Policy.MinServers != 2 || len(d.Workers) < 2 || d.Reason != "" {
		t.Errorf("after start: exit %d, %+v; want running at 2/4 (the sizes before the scale to 0)", code, d)
	}
	echo(t, addr, "back")
}

// TestBusyPortIsWaitedFor: a daemon whose port the test holds waits, with
// the address and the error in status and once in the log; when the test
// lets the port go, the daemon starts by itself.
func TestBusyPortIsWaitedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A port held for the test: once the test lets it go, another test
	// process could be given it before the daemon's next try.
	hold, err := net.Listen("tcp", testport.Reserve(t))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	addr := hold.Addr().String()
	e.write("echo.ini", strings.Replace(scaleConf(""), "127.0.0.1:0", addr, 1))
	e.write("other.ini", echoConf("min_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	m.addr("other") // the master runs the rest
	e.waitReady()
	d, code := e.statusOf("echo")
	if code != 3 || d.State != "waiting" || !strings.Contains(d.Reason, "waiting for "+addr+": address already in use, next try in ") || d.NextRetry == nil {
		t.Fatalf("status of a daemon whose port is busy: exit %d, %+v", code, d)
	}
	out, _, _ := e.nsfd("status")
	if !strings.Contains(out, "reason: waiting for "+addr+": address already in use") {
		t.Errorf("status text:\n%s", out)
	}
	// Tried again meanwhile (0.5 s, 1 s, ...): the log said it once.
	waitFor(t, "a second try", 10*time.Second, func() bool {
		d, _ := e.statusOf("echo")
		return d.NextRetry != nil && d.NextRetry.Sub(d.Since) > time.Second
	})
	if n := strings.Count(e.log(), "address in use; waiting for it"); n != 1 {
		t.Errorf("the log says the port is busy %d times, want once", n)
	}
	hold.Close()
	waitFor(t, "echo to start by itself", 20*time.Second, func() bool {
		d, _ := e.statusOf("echo")
		return d.State == "running"
	})
	echo(t, addr, "free at last")
	if !strings.Contains(e.log(), "address free; daemon started") {
		t.Error("the log does not say the daemon started once the address was free")
	}
}

// TestScaleSurvivesAnUpgrade: `nsfd upgrade` hands the scales over: a
// scaled daemon stays scaled, one scaled to 0 stays at 0 with its port
// bound, and comes back on it.
func TestScaleSurvivesAnUpgrade(t *testing.T) {
	needPump(t, "refuses nsfd upgrade (its workers' pipes and exits are not handed over)")
	t.Parallel()
	e := newEnv(t)
	e.write("up.ini", scaleConf(""))
	e.write("zero.ini", scaleConf(""))
	m := e.start()
	m.addr("up")
	zaddr := m.addr("zero")
	e.waitReady()
	if _, errOut, code := e.nsfd("scale", "up", "+1", "--wait"); code != 0 {
		t.Fatalf("scale up +1: exit %d, %s", code, errOut)
	}
	if _, errOut, code := e.nsfd("scale", "zero", "0", "--wait"); code != 0 {
		t.Fatalf("scale zero 0: exit %d, %s", code, errOut)
	}
	if out, errOut, code := e.nsfd("upgrade"); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, "the upgrade", 20*time.Second, func() bool { return strings.Contains(e.log(), "nsfd upgraded in place") })
	e.waitReady()
	if d, _ := e.statusOf("up"); d.Policy.MinServers != 2 || d.ScaledFrom == nil {
		t.Errorf("up after the upgrade: policy %+v, scaled_from %+v; want 2/4 scaled from 1/3", d.Policy, d.ScaledFrom)
	}
	d, code := e.statusOf("zero")
	if code != 3 || d.State != "stopped" || !strings.Contains(d.Reason, "scaled to 0") || len(d.Listeners) != 1 {
		t.Errorf("zero after the upgrade: exit %d, %+v", code, d)
	}
	if l, err := net.Listen("tcp", zaddr); err == nil {
		l.Close()
		t.Fatalf("%s is free after the upgrade: the listener of the daemon scaled to 0 was not handed over", zaddr)
	}
	if _, errOut, code := e.nsfd("scale", "zero", "1", "--wait"); code != 0 {
		t.Fatalf("scale zero 1 after the upgrade: exit %d, %s", code, errOut)
	}
	echo(t, zaddr, "handed over")
}

// TestScaleOnDemandToZero: an on-demand daemon scaled to 0 is not woken by
// a connection (the client waits in the backlog); start makes it on-demand
// again, and the waiting client wakes it.
func TestScaleOnDemandToZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("lazy.ini", echoConf("min_servers = 0\nmax_servers = 2\nidle_timeout = 30s\n"))
	m := e.start()
	addr := m.addr("lazy")
	e.waitReady()
	if _, errOut, code := e.nsfd("scale", "lazy", "0", "--wait"); code != 0 {
		t.Fatalf("scale lazy 0: exit %d, %s", code, errOut)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "lazy\n")
	rd := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if line, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("an on-demand daemon scaled to 0 answered %q", line)
	}
	if w := m.workers(""); len(w) != 0 {
		t.Fatalf("a connection woke an on-demand daemon scaled to 0: workers %v", w)
	}
	if _, errOut, code := e.nsfd("scale", "lazy", "2"); code != 1 || !strings.Contains(errOut, "comes back with start") {
		t.Errorf("scale lazy 2: exit %d, %q; want exit 1 saying start brings it back", code, errOut)
	}
	if _, errOut, code := e.nsfd("start", "lazy"); code != 0 {
		t.Fatalf("start lazy: exit %d, %s", code, errOut)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if line, err := rd.ReadString('\n'); err != nil || line != "lazy\n" {
		t.Fatalf("the waiting client after start: %q, %v", line, err)
	}
	if d, _ := e.statusOf("lazy"); d.ScaledFrom != nil || d.Policy.MinServers != 0 || d.Policy.MaxServers != 2 {
		t.Errorf("after start: %+v; want on demand at the file's 0/2, not scaled", d)
	}
}
