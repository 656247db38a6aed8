package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/internal/testport"
	"github.com/nsfd/nsfd/prefork"
)

func TestPortBackoff(t *testing.T) {
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := portBackoff(i); got != w {
			t.Errorf("portBackoff(%d) = %s, want %s", i, got, w)
		}
	}
	if got := portBackoff(1 << 30); got != portRetryMax {
		t.Errorf("portBackoff(huge) = %s, want %s", got, portRetryMax)
	}
}

func TestBusyPortError(t *testing.T) {
	inUse := &net.OpError{Op: "listen", Net: "tcp", Err: &osSyscallErr{syscall.EADDRINUSE}}
	var busy *busyPortError
	if err := busyPort("127.0.0.1:7000", inUse); !errors.As(err, &busy) || busy.addr != "127.0.0.1:7000" {
		t.Errorf("busyPort(EADDRINUSE) = %v, want a busyPortError for the address", err)
	}
	other := &net.OpError{Op: "listen", Net: "tcp", Err: &osSyscallErr{syscall.EACCES}}
	if err := busyPort("127.0.0.1:80", other); errors.As(err, &busy) {
		t.Errorf("busyPort(EACCES) = %v, want the error as it is", err)
	}
	pw := &portWait{addr: "127.0.0.1:7000", why: "address already in use", next: time.Unix(100, 0).Add(4 * time.Second)}
	if got, want := pw.reason(time.Unix(100, 0)), "waiting for 127.0.0.1:7000: address already in use, next try in 4s"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// osSyscallErr is an error wrapping an errno, as os.SyscallError does.
type osSyscallErr struct{ errno syscall.Errno }

func (e *osSyscallErr) Error() string { return "bind: " + e.errno.Error() }
func (e *osSyscallErr) Unwrap() error { return e.errno }

func TestScaleKeptAndScaledPolicy(t *testing.T) {
	file := &config.Daemon{MinServers: 2, MaxServers: 8, MinSpareServers: 1, MaxSpareServers: 4}
	o := policyOf(file)
	if sc := newScale(file, o); sc != nil {
		t.Errorf("newScale at the file's sizes = %+v, want nil", sc)
	}
	up, err := scalePolicy(o, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	sc := newScale(file, up)
	if sc == nil || sc.FileMin != 2 || sc.FileMax != 8 || sc.Min != 5 || sc.Max != 11 {
		t.Fatalf("newScale = %+v, want 2/8 -> 5/11", sc)
	}
	// Another key of the file changes: the scale applies on top of it.
	spare := *file
	spare.MaxSpareServers = 6
	if !scaleKept(sc, &spare) {
		t.Error("a change of max_spare_servers dropped the scale")
	}
	if p, err := scaledPolicy(policyOf(&spare), sc); err != nil || p.MinServers != 5 || p.MaxServers != 11 || p.MaxSpareServers != 6 {
		t.Errorf("scaledPolicy = %+v, %v; want 5/11 with max_spare_servers 6", p, err)
	}
	// min_servers or max_servers change: the file wins.
	for _, f := range []config.Daemon{{MinServers: 3, MaxServers: 8}, {MinServers: 2, MaxServers: 9}} {
		if scaleKept(sc, &f) {
			t.Errorf("scale from 2/8 kept for a file with %d/%d", f.MinServers, f.MaxServers)
		}
	}
	if scaleKept(nil, file) {
		t.Error("no scale is kept")
	}
	if p, err := scaledPolicy(o, nil); err != nil || p != o {
		t.Errorf("scaledPolicy(nil) = %+v, %v; want the file's", p, err)
	}
}

// TestScaleSurvivesReloads: a scale stays through a reload that rolls the
// workers (an environment change) and one that only resizes (max_requests),
// shows in status as scaled from the file's sizes, and goes when the file
// changes max_servers.
func TestScaleSurvivesReloads(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	ctx := context.Background()
	if _, err := tm.Scale(ctx, "a", 2, false); err != nil {
		t.Fatal(err)
	}
	check := func(when string, min, max int, scaled bool) {
		t.Helper()
		p := tm.pools.pool(t, "a")
		p.mu.Lock()
		got := p.policy
		p.mu.Unlock()
		if got.MinServers != min || got.MaxServers != max {
			t.Errorf("%s: pool at %d/%d, want %d/%d", when, got.MinServers, got.MaxServers, min, max)
		}
		d := tm.daemon("a")
		switch {
		case scaled && (d.ScaledFrom == nil || *d.ScaledFrom != ScaledFrom{MinServers: 1, MaxServers: 2}):
			t.Errorf("%s: status scaled_from %+v, want the file's 1/2", when, d.ScaledFrom)
		case !scaled && d.ScaledFrom != nil:
			t.Errorf("%s: status scaled_from %+v, want none", when, d.ScaledFrom)
		}
	}
	check("scaled", 3, 4, true)
	tm.write("a.ini", tm.daemonFile("a.sock", "[env]", "X = 1"))
	if r := tm.reload(); len(r.Rolled) != 1 {
		t.Fatalf("env change: %+v, want a rolled", r)
	}
	check("after an env change", 3, 4, true)
	tm.write("a.ini", tm.daemonFile("a.sock", "max_requests = 77", "[env]", "X = 1"))
	if r := tm.reload(); len(r.Resized) != 1 {
		t.Fatalf("max_requests change: %+v, want a resized", r)
	}
	check("after a max_requests change", 3, 4, true)
	// Stopped and started: still scaled.
	if err := tm.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := tm.Start(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	check("after stop and start", 3, 4, true)
	tm.write("a.ini", strings.Replace(tm.daemonFile("a.sock", "max_requests = 77", "[env]", "X = 1"), "max_servers = 2", "max_servers = 3", 1))
	tm.reload()
	check("after a max_servers change", 1, 3, false)
	if !strings.Contains(readLog(t, tm), "scale dropped: the file wins") {
		t.Error("the log does not say the scale was dropped")
	}
}

// readLog returns the test master's central log.
func readLog(t *testing.T, tm *testMaster) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tm.sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(tm.dir, "var", "log", "nsfd.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScaleToZeroKeepsTheListeners: scale 0 stops the pool but not the
// listener (a client still connects, to the backlog) nor the registry
// row (state stopped: not resolvable); scale 2 and start bring it back on
// the same socket; stop then closes it.
func TestScaleToZeroKeepsTheListeners(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	ctx := context.Background()
	sock := filepath.Join(tm.dir, "a.sock")
	ps, err := tm.Scale(ctx, "a", 0, true)
	if err != nil || len(ps) != 1 || ps[0].MaxServers != 0 {
		t.Fatalf("scale 0: %+v, %v", ps, err)
	}
	first := tm.pools.pool(t, "a")
	waitUntil(t, "a stopped", func() bool {
		d := tm.daemon("a")
		return d.State == "stopped" && len(d.Workers) == 0 && strings.Contains(d.Reason, "scaled to 0")
	})
	d := tm.daemon("a")
	if len(d.Listeners) != 1 || d.Policy.MinServers != 0 || d.Policy.MaxServers != 0 || d.ScaledFrom == nil {
		t.Errorf("status after scale 0: %+v", d)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the listener of a daemon scaled to 0 is gone: %v", err)
	}
	c.Close()
	if rec, ok := tm.registered("a"); !ok || rec.State != prefork.PoolStopped.String() {
		t.Errorf("registered %+v, %v; want kept, state stopped", rec, ok)
	}
	// An unrelated reload keeps it at 0.
	tm.write("a.ini", tm.daemonFile("a.sock", "[env]", "X = 1"))
	tm.reload()
	if d := tm.daemon("a"); d.State != "stopped" || tm.pools.pool(t, "a") != first {
		t.Errorf("after a reload, scaled to 0: %+v", d)
	}
	if _, err := tm.Scale(ctx, "a", -1, false); !errors.Is(err, ErrBadScale) {
		t.Errorf("scale -1 at 0: %v, want ErrBadScale", err)
	}
	if ps, err := tm.Scale(ctx, "a", 2, true); err != nil || ps[0].MinServers != 2 || ps[0].MaxServers != 3 {
		t.Fatalf("scale 2 from 0: %+v, %v", ps, err)
	}
	if p := tm.pools.pool(t, "a"); p == first || p.config().Listeners[0] != first.config().Listeners[0] {
		t.Error("scale 2 did not start a new pool on the listener it kept")
	}
	if d := tm.daemon("a"); d.State != "running" || d.Policy.MinServers != 2 || d.ScaledFrom == nil {
		t.Errorf("after scale 2: %+v", d)
	}
	// 0 again, then start: back at 2/3.
	if _, err := tm.Scale(ctx, "a", 0, true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a stopped again", func() bool { return strings.Contains(tm.daemon("a").Reason, "scaled to 0") })
	if err := tm.Start(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if d := tm.daemon("a"); d.State != "running" || d.Policy.MinServers != 2 || d.Policy.MaxServers != 3 {
		t.Errorf("after start: %+v, want running at 2/3", d)
	}
	// 0, then stop: the listener closes.
	if _, err := tm.Scale(ctx, "a", 0, true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a stopped a third time", func() bool { return tm.daemon("a").State == "stopped" })
	if err := tm.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if d := tm.daemon("a"); len(d.Listeners) != 0 || d.Reason != "" {
		t.Errorf("after stop: %+v, want no listener, no reason", d)
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Error("a stopped daemon's socket still takes connections")
	}
}

// TestScaleToZeroDroppedByTheFile: a file that changes min_servers starts
// a daemon scaled to 0, at the file's sizes.
func TestScaleToZeroDroppedByTheFile(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	if _, err := tm.Scale(context.Background(), "a", 0, true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a stopped", func() bool { return strings.Contains(tm.daemon("a").Reason, "scaled to 0") })
	tm.write("a.ini", strings.Replace(tm.daemonFile("a.sock"), "max_servers = 2", "max_servers = 3", 1))
	tm.reload()
	if d := tm.daemon("a"); d.State != "running" || d.Policy.MaxServers != 3 || d.ScaledFrom != nil {
		t.Errorf("after the file changed max_servers: %+v, want running at the file's 1/3", d)
	}
}

// TestBusyPortWaitsAndStarts: a daemon whose port is taken waits, with the
// address and the error in status, and starts by itself once it is free.
func TestBusyPortWaitsAndStarts(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	// A port held for the test: once the test lets it go, another test
	// process could be given it before the daemon's next try (CI).
	hold, err := net.Listen("tcp", testport.Reserve(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := hold.Addr().String()
	tm.write("a.ini", strings.Replace(tm.daemonFile("a.sock"), filepath.Join(tm.dir, "a.sock")+"|unix", addr, 1))
	if r := tm.reload(); len(r.Errors) != 0 || len(r.Added) != 1 {
		hold.Close()
		t.Fatalf("reload: %+v, want a added, no error", r)
	}
	d := tm.daemon("a")
	if d.State != "waiting" || !strings.Contains(d.Reason, "waiting for "+addr+": address already in use, next try in") || d.NextRetry == nil {
		hold.Close()
		t.Fatalf("status: %+v, want waiting for the address", d)
	}
	hold.Close()
	waitUntil(t, "a running", func() bool { return tm.daemon("a").State == "running" })
	if d := tm.daemon("a"); len(d.Listeners) != 1 || d.Reason != "" {
		t.Errorf("after the address freed: %+v", d)
	}
	if log := readLog(t, tm); strings.Count(log, "address in use; waiting for it") != 1 || !strings.Contains(log, "address free; daemon started") {
		t.Errorf("log:\n%s", log)
	}
}
