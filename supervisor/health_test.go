package supervisor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/registry"
)

// fakeHealth drives healthChecks through its seams: the test hands out
// each turn of the clock and each check's result, and sees every roll and
// registry mark.
type fakeHealth struct {
	armed   chan time.Duration // the checker waits for its next turn
	tick    chan time.Time     // the turn comes
	probed  chan healthTarget  // a check began
	results chan error         // its result

	mu    sync.Mutex
	rolls []string
	marks []string
}

func newFakeHealth() *fakeHealth {
	return &fakeHealth{armed: make(chan time.Duration, 1), tick: make(chan time.Time), probed: make(chan healthTarget, 1), results: make(chan error)}
}

// install puts f's seams into h.
func (f *fakeHealth) install(h *healthChecks) {
	h.after = func(d time.Duration) <-chan time.Time {
		f.armed <- d
		return f.tick
	}
	h.probe = func(t healthTarget, _ hclog.Logger) healthProbe {
		return func(ctx context.Context) error {
			f.probed <- t
			select {
			case err := <-f.results:
				return err
			case <-ctx.Done():
				return errors.New("timed out")
			}
		}
	}
	h.roll = func(_ context.Context, name string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.rolls = append(f.rolls, name)
		return nil
	}
	h.mark = func(name string, unhealthy bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		word := "healthy"
		if unhealthy {
			word = "unhealthy"
		}
		f.marks = append(f.marks, name+" "+word)
	}
}

// turn gives the checker its next turn and the check's result, and waits
// until it has recorded it (it waits for the turn after).
func (f *fakeHealth) turn(t *testing.T, result error) {
	t.Helper()
	f.tick <- time.Now()
	select {
	case <-f.probed:
	case <-time.After(10 * time.Second):
		t.Fatal("no check on the turn")
	}
	f.results <- result
	f.waitArmed(t)
}

func (f *fakeHealth) waitArmed(t *testing.T) {
	t.Helper()
	select {
	case <-f.armed:
	case <-time.After(10 * time.Second):
		t.Fatal("the checker did not wait for its next turn")
	}
}

func (f *fakeHealth) counts() (rolls int, marks string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rolls), strings.Join(f.marks, ", ")
}

func httpTarget(failures int) *healthTarget {
	return &healthTarget{daemon: "web", network: "tcp", address: "127.0.0.1:1",
		check: config.HealthCheck{Kind: config.HealthHTTP, Path: "/healthz", Interval: time.Second, Timeout: time.Minute, Failures: failures}}
}

func stateEvent(st prefork.PoolState) prefork.Event {
	return prefork.Event{Kind: prefork.EventState, Pool: "web", State: st}
}

func TestHealthChecker(t *testing.T) {
	t.Parallel()
	f := newFakeHealth()
	h := newHealthChecks(hclog.NewNullLogger())
	f.install(h)
	defer h.close()

	// A check set on a daemon that does not run yet waits for its first READY.
	h.set("web", httpTarget(2))
	if st := h.status("web"); st == nil || st.Checking || !st.Healthy || st.Check != "http:/healthz" {
		t.Fatalf("before the daemon runs: %+v", st)
	}
	h.observe(stateEvent(prefork.PoolRunning))
	if d := <-f.armed; d != time.Second {
		t.Fatalf("first turn after %v, want health_interval", d)
	}

	fail := errors.New("GET /healthz: 503")
	f.turn(t, fail)
	st := h.status("web")
	if st.Healthy || st.Failures != 1 || st.Reason != "unhealthy: GET /healthz: 503 (1 in a row)" || st.Checked == nil {
		t.Fatalf("after one failure: %+v", st)
	}
	if rolls, marks := f.counts(); rolls != 0 || marks != "web unhealthy" {
		t.Fatalf("after one failure: %d rolls, marks %q", rolls, marks)
	}
	f.turn(t, fail)
	waitUntil(t, "a roll after health_failures failures", func() bool { r, _ := f.counts(); return r == 1 })
	f.turn(t, fail)
	f.turn(t, fail)
	waitUntil(t, "a second roll after as many more", func() bool { r, _ := f.counts(); return r == 2 })
	if st := h.status("web"); st.Failures != 4 || st.Rolls != 2 || st.Reason != "unhealthy: GET /healthz: 503 (4 in a row)" {
		t.Fatalf("after four failures: %+v", st)
	}

	// Paused while the pool does not run: turns pass without a check.
	h.observe(stateEvent(prefork.PoolBackoff))
	f.tick <- time.Now()
	f.waitArmed(t)
	h.observe(stateEvent(prefork.PoolRunning))

	f.turn(t, nil)
	if st := h.status("web"); !st.Healthy || st.Failures != 0 || st.Reason != "" || st.LastError != fail.Error() {
		t.Fatalf("after a pass: %+v", st)
	}
	if _, marks := f.counts(); marks != "web unhealthy, web healthy" {
		t.Fatalf("marks %q", marks)
	}

	// Stopping forgets what was found, and clears the mark.
	f.turn(t, fail)
	h.observe(stateEvent(prefork.PoolStopping))
	if st := h.status("web"); st.Checking || !st.Healthy || st.Failures != 0 {
		t.Fatalf("after stopping: %+v", st)
	}
	if _, marks := f.counts(); marks != "web unhealthy, web healthy, web unhealthy, web healthy" {
		t.Fatalf("marks %q", marks)
	}
	select {
	case f.tick <- time.Now(): // taken by a checker on its way out, maybe: it must not check
		select {
		case <-f.probed:
			t.Fatal("a stopped checker took its turn")
		case <-time.After(50 * time.Millisecond):
		}
	case <-time.After(50 * time.Millisecond):
	}

	// Running again (nsfd start): checked again; a daemon gone has no status.
	h.observe(stateEvent(prefork.PoolRunning))
	f.waitArmed(t)
	h.set("web", nil) // a reload took the check away
	if st := h.status("web"); st != nil {
		t.Fatalf("a daemon without a check: %+v", st)
	}
	select {
	case f.tick <- time.Now():
		t.Fatal("a checker without a check took its turn")
	case <-time.After(50 * time.Millisecond):
	}
	h.set("web", httpTarget(2)) // a reload gave it one back: the pool runs, checks start
	f.waitArmed(t)
	h.remove("web")
	if st := h.status("web"); st != nil {
		t.Fatalf("a daemon gone: %+v", st)
	}
}

func TestHealthCheckTimesOut(t *testing.T) {
	t.Parallel()
	f := newFakeHealth()
	h := newHealthChecks(hclog.NewNullLogger())
	f.install(h)
	defer h.close()
	tg := httpTarget(5)
	tg.check.Timeout = 20 * time.Millisecond
	h.observe(stateEvent(prefork.PoolRunning)) // READY before set: set starts it
	h.set("web", tg)
	f.waitArmed(t)
	f.tick <- time.Now()
	<-f.probed // and no result: the probe's context ends at health_timeout
	f.waitArmed(t)
	if st := h.status("web"); st.Healthy || st.LastError != "timed out" {
		t.Fatalf("after a check that hung: %+v", st)
	}
}

// A listener that accepts (the kernel's backlog does, with no worker
// behind it, as the master's listener does) is not healthy: the check
// wants an answer.
func TestHTTPCheckWantsAnAnswer(t *testing.T) {
	t.Parallel()
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	var code atomic.Int32
	code.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.URL.RawQuery != "deep=1" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	sock := filepath.Join(t.TempDir(), "web.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	usrv := &http.Server{Handler: srv.Config.Handler, ReadHeaderTimeout: time.Second}
	go usrv.Serve(ul)
	defer usrv.Close()

	check := func(network, address string) error {
		tg := *httpTarget(1)
		tg.check.Path, tg.check.Timeout = "/healthz?deep=1", 300*time.Millisecond
		tg.network, tg.address = network, address
		ctx, cancel := context.WithTimeout(context.Background(), tg.check.Timeout)
		defer cancel()
		return probeOf(tg, hclog.NewNullLogger())(ctx)
	}
	if err := check("tcp", mute.Addr().String()); err == nil || !strings.Contains(err.Error(), "GET /healthz?deep=1: no answer within 300ms") {
		t.Errorf("a listener with nobody behind it: %v", err)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, c := range []struct{ network, address string }{{"tcp", addr}, {"unix", sock}} {
		code.Store(http.StatusOK)
		if err := check(c.network, c.address); err != nil {
			t.Errorf("%s: 200: %v", c.network, err)
		}
		code.Store(http.StatusServiceUnavailable)
		if err := check(c.network, c.address); err == nil || err.Error() != "GET /healthz?deep=1: 503" {
			t.Errorf("%s: 503: %v", c.network, err)
		}
	}
}

func TestExecCheck(t *testing.T) {
	t.Parallel()
	creds := config.Creds{UID: -1, GID: -1}
	run := func(timeout time.Duration, argv ...string) error {
		tg := healthTarget{daemon: "web", addresses: []string{"tcp:127.0.0.1:7001", "unix:/run/web.sock"},
			creds: creds,
			check: config.HealthCheck{Kind: config.HealthExec, Command: argv, Interval: time.Second, Timeout: timeout, Failures: 1}}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return probeOf(tg, hclog.NewNullLogger())(ctx)
	}
	env := `test "$NSFD_DAEMON" = web && test "$NSFD_ADDRESS" = 127.0.0.1:7001 && test "$NSFD_LISTENERS" = "tcp:127.0.0.1:7001 unix:/run/web.sock"`
	if err := run(10*time.Second, "/bin/sh", "-c", env); err != nil {
		t.Errorf("environment: %v", err)
	}
	if err := run(10*time.Second, "/bin/sh", "-c", "exit 3"); err == nil || err.Error() != "sh: exit status 3" {
		t.Errorf("exit 3: %v", err)
	}
	start := time.Now()
	if err := run(200*time.Millisecond, "/bin/sh", "-c", "sleep 30 & sleep 30"); err == nil || !strings.Contains(err.Error(), "killed, no result within 200ms") {
		t.Errorf("a check that hangs: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a hanging check took %v to kill (its process group too)", took)
	}
	if os.Geteuid() == 0 {
		creds = config.Creds{UID: 65534, GID: 65534}
		if err := run(10*time.Second, "/bin/sh", "-c", `test "$(id -u):$(id -g):$(id -G)" = 65534:65534:65534`); err != nil {
			t.Errorf("not run as the daemon's user and group, without the master's groups: %v", err)
		}
	}
}

// The master's side: status, metrics, the roll of the pool and the
// registry mark, on fake pools and a fake clock and probe.
func TestHealthInStatusAndMetrics(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	f := newFakeHealth()
	f.install(tm.health)
	tm.health.roll, tm.health.mark = tm.healthRoll, tm.reg.health
	t.Cleanup(tm.health.close)
	tm.write("web.ini", tm.daemonFile("web.sock", "health = http:/healthz", "health_failures = 2"))
	tm.reload()
	f.waitArmed(t)
	h := tm.controlHandler(tm.apiHandler(), -1)
	metric := func() string {
		for _, l := range strings.Split(asRoot(t, h, "GET", "/metrics").raw, "\n") {
			if strings.HasPrefix(l, `nsfd_daemon_healthy{daemon="web"}`) {
				return l
			}
		}
		return ""
	}
	if m := metric(); m != `nsfd_daemon_healthy{daemon="web"} 1` {
		t.Fatalf("healthy: %q", m)
	}
	unhealthy := func() bool {
		tm.reg.mu.Lock()
		defer tm.reg.mu.Unlock()
		return tm.reg.daemons["web"].unhealthy
	}
	fail := errors.New("GET /healthz: 503")
	f.turn(t, fail)
	f.turn(t, fail)
	d := tm.daemon("web")
	if d.State != "running" || d.Health == nil || d.Health.Healthy || d.Reason != "unhealthy: GET /healthz: 503 (2 in a row)" {
		t.Fatalf("status: state %s reason %q health %+v", d.State, d.Reason, d.Health)
	}
	if m := metric(); m != `nsfd_daemon_healthy{daemon="web"} 0` {
		t.Fatalf("unhealthy: %q", m)
	}
	if !unhealthy() {
		t.Fatal("the registrar does not mark web unhealthy")
	}
	pool := tm.pools.pool(t, "web")
	waitUntil(t, "the workers rolled", func() bool { return slices.Contains(pool.Calls(), "restart") })
	f.turn(t, nil)
	if d := tm.daemon("web"); !d.Health.Healthy || d.Reason != "" || d.Health.Rolls != 1 {
		t.Fatalf("recovered: reason %q health %+v", d.Reason, d.Health)
	}
	if m := metric(); m != `nsfd_daemon_healthy{daemon="web"} 1` || unhealthy() {
		t.Fatalf("recovered: %q, registry unhealthy %v", m, unhealthy())
	}
}

// The registrar marks a daemon's endpoints unhealthy, keeps the mark
// across a new definition (a reload), and clears it.
func TestRegistrarMarksUnhealthy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg, err := registry.Open(ctx, registry.TypeSQLite, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	r := newRegistrar(registry.TypeSQLite, "", "n1", time.Hour, hclog.NewNullLogger())
	r.open = func(context.Context) (registry.Registry, error) { return reg, nil }
	rctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); <-r.done }()
	go r.run(rctx)
	def := registry.Daemon{Name: "web", Endpoints: []registry.Endpoint{{Proto: "tcp", Address: "127.0.0.1:7001"}, {Proto: "unix", Address: "/run/web.sock"}}}
	marked := func(want bool) func() bool {
		return func() bool {
			eps, err := reg.Resolve(ctx, "web", registry.ResolveOptions{MaxAge: time.Hour})
			if err != nil || len(eps) != 2 {
				return false
			}
			for _, e := range eps {
				if e.Unhealthy != want {
					return false
				}
			}
			return true
		}
	}
	r.define(def)
	r.state("web", registry.StateRunning)
	waitUntil(t, "registered healthy", marked(false))
	r.health("web", true)
	waitUntil(t, "marked unhealthy", marked(true))
	moved := def
	moved.Endpoints = []registry.Endpoint{{Proto: "tcp", Address: "127.0.0.1:7002"}, def.Endpoints[1]}
	r.define(moved) // a reload that moved a listener
	waitUntil(t, "the new definition written, still marked", func() bool {
		eps, err := reg.Resolve(ctx, "web", registry.ResolveOptions{MaxAge: time.Hour})
		return err == nil && len(eps) == 2 && eps[0].Address == "127.0.0.1:7002" && eps[0].Unhealthy && eps[1].Unhealthy
	})
	if moved.Endpoints[0].Unhealthy {
		t.Fatal("the mark leaked into the caller's definition")
	}
	r.health("web", false)
	waitUntil(t, "healthy again", marked(false))
}

// A reload that adds, changes or removes a running daemon's health check
// applies it in place: no roll, and the checks follow at once.
func TestHealthCheckReloadedInPlace(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	f := newFakeHealth()
	f.install(tm.health)
	t.Cleanup(tm.health.close)
	tm.write("web.ini", tm.daemonFile("web.sock"))
	tm.reload()
	if d := tm.daemon("web"); d.Health != nil {
		t.Fatalf("health without a check: %+v", d.Health)
	}
	tm.write("web.ini", tm.daemonFile("web.sock", "health = exec:/bin/true", "health_interval = 3s"))
	if r := tm.reload(); !slices.Equal(r.Resized, []string{"web"}) || len(r.Rolled) != 0 {
		t.Fatalf("adding a check: %+v", r)
	}
	if d := <-f.armed; d != 3*time.Second {
		t.Fatalf("first turn after %v", d)
	}
	if d := tm.daemon("web"); d.Health == nil || d.Health.Check != "exec:/bin/true" || !d.Health.Checking {
		t.Fatalf("after adding a check: %+v", d.Health)
	}
	tm.write("web.ini", tm.daemonFile("web.sock", "health = http:/ready", "health_interval = 3s"))
	tm.reload()
	f.tick <- time.Now()
	if tg := <-f.probed; tg.check.String() != "http:/ready" || tg.network != "unix" {
		t.Fatalf("the changed check is not the one run: %+v", tg)
	}
	f.results <- nil
	f.waitArmed(t)
	tm.write("web.ini", tm.daemonFile("web.sock"))
	tm.reload()
	if d := tm.daemon("web"); d.Health != nil {
		t.Fatalf("after removing the check: %+v", d.Health)
	}
	if calls := tm.pools.pool(t, "web").Calls(); slices.Contains(calls, "restart") || slices.Contains(calls, "update") {
		t.Fatalf("the workers were rolled: %v", calls)
	}
}
