package registry_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/sqlstore"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/pgtest"
	_ "github.com/nsfd/nsfd/registry/postgres"
	_ "github.com/nsfd/nsfd/registry/sqlite"
)

// pg is the PostgreSQL cluster the package's tests share, started on first
// use; each test gets a database of its own.
var pg = pgtest.Shared()

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	code := m.Run()
	if err := pg.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// An engine makes empty registries of one type.
type engine struct {
	typ string
	dsn func(tb testing.TB) string // the DSN of a new, empty registry
}

var engines = []engine{
	{registry.TypeSQLite, func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "var", "registry.db") }},
	{registry.TypePostgres, func(tb testing.TB) string { return pg.Get(tb).NewDatabase(tb) }},
}

// open opens a registry for tb and closes it when tb ends.
func open(tb testing.TB, typ, dsn string) registry.Registry {
	tb.Helper()
	r, err := registry.Open(context.Background(), typ, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Error(err)
		}
	})
	return r
}

// storeOf is the SQL store under a registry.
func storeOf(tb testing.TB, r registry.Registry) *sqlstore.Store {
	tb.Helper()
	s, ok := sqlstore.Of(r)
	if !ok {
		tb.Fatalf("%T is not a SQL store", r)
	}
	return s
}

// env is what a case of the table runs against.
type env struct {
	typ, dsn string
	r        registry.Registry
}

// TestRegistry runs the one test table against both engines.
func TestRegistry(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			for _, c := range registryCases {
				t.Run(c.name, func(t *testing.T) {
					dsn := e.dsn(t)
					c.run(t, env{e.typ, dsn, open(t, e.typ, dsn)})
				})
			}
		})
	}
}

var ctx = context.Background()

// daemon returns a running daemon with endpoints given as "proto address".
func daemon(node, name string, pid int, eps ...string) registry.Daemon {
	d := registry.Daemon{Node: node, Name: name, State: registry.StateRunning, Encoding: "json", MasterPID: pid, ConfigHash: "h1"}
	for _, e := range eps {
		proto, addr, _ := strings.Cut(e, " ")
		d.Endpoints = append(d.Endpoints, registry.Endpoint{Proto: proto, Address: addr})
	}
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func register(t *testing.T, r registry.Registry, ds ...registry.Daemon) {
	t.Helper()
	for _, d := range ds {
		must(t, r.Register(ctx, d))
	}
}

// show renders endpoints as "node proto address" for comparison.
func show(eps []registry.Endpoint) []string {
	out := []string{}
	for _, e := range eps {
		out = append(out, e.Node+" "+e.Proto+" "+e.Address)
	}
	return out
}

func resolve(t *testing.T, r registry.Registry, name string, o registry.ResolveOptions) []string {
	t.Helper()
	eps, err := r.Resolve(ctx, name, o)
	if err != nil {
		t.Fatalf("resolve %s: %v", name, err)
	}
	for _, e := range eps {
		if e.Daemon != name {
			t.Fatalf("endpoint %+v of daemon %q", e, name)
		}
	}
	return show(eps)
}

func wantResolve(t *testing.T, r registry.Registry, name string, o registry.ResolveOptions, want ...string) {
	t.Helper()
	if got := resolve(t, r, name, o); !reflect.DeepEqual(got, want) {
		t.Fatalf("resolve %s (%+v):\n got %q\nwant %q", name, o, got, want)
	}
}

func wantResolveErr(t *testing.T, r registry.Registry, name string, o registry.ResolveOptions, want error) {
	t.Helper()
	eps, err := r.Resolve(ctx, name, o)
	if !errors.Is(err, want) {
		t.Fatalf("resolve %s: %q, %v; want %v", name, show(eps), err, want)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
		t.Fatalf("error %q does not name %q", err, name)
	}
}

// age moves the heartbeat of node's daemons back by d, as if their master
// had stopped beating d ago.
func age(t *testing.T, r registry.Registry, node string, d time.Duration) {
	t.Helper()
	s := storeOf(t, r)
	_, err := s.Writer().ExecContext(ctx, s.Dialect().Render(`UPDATE daemons SET heartbeat_at = heartbeat_at - ? WHERE node = ?`),
		d.Milliseconds(), node)
	must(t, err)
}

// rows counts the rows of a table.
func rows(t *testing.T, r registry.Registry, table string) int {
	t.Helper()
	var n int
	must(t, storeOf(t, r).Reader().QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n))
	return n
}

// names lists daemons as "node/name".
func names(t *testing.T, r registry.Registry) []string {
	t.Helper()
	ds, err := r.List(ctx)
	must(t, err)
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Node+"/"+d.Name)
	}
	return out
}

func wantNames(t *testing.T, r registry.Registry, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := names(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("list: got %q, want %q", got, want)
	}
}

// pids lists a daemon's workers as "pid/slot/state/requests".
func pids(t *testing.T, r registry.Registry, node, name string) []string {
	t.Helper()
	ws, err := r.Workers(ctx, node, name)
	must(t, err)
	out := []string{}
	for _, w := range ws {
		if w.Node != node || w.Daemon != name {
			t.Fatalf("worker %+v listed for %s/%s", w, node, name)
		}
		out = append(out, fmt.Sprintf("%d/%d/%s/%d", w.PID, w.Slot, w.State, w.Requests))
	}
	return out
}

func wantWorkers(t *testing.T, r registry.Registry, node, name string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := pids(t, r, node, name); !reflect.DeepEqual(got, want) {
		t.Fatalf("workers of %s/%s: got %q, want %q", node, name, got, want)
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

var local1 = registry.ResolveOptions{LocalNode: "n1"}

var registryCases = []struct {
	name string
	run  func(t *testing.T, e env)
}{
	{"register resolve unregister", func(t *testing.T, e env) {
		r := e.r
		started := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
		d := daemon("n1", "echo", 100, "tcp 127.0.0.1:41234", "unix /run/nsfd/echo.sock")
		d.StartedAt = started
		before := time.Now().Add(-time.Second)
		register(t, r, d)
		wantResolve(t, r, "echo", local1, "n1 tcp 127.0.0.1:41234", "n1 unix /run/nsfd/echo.sock")
		wantResolve(t, r, "echo", registry.ResolveOptions{}, "n1 tcp 127.0.0.1:41234", "n1 unix /run/nsfd/echo.sock")

		ds, err := r.List(ctx)
		must(t, err)
		if len(ds) != 1 {
			t.Fatalf("list: %+v", ds)
		}
		got := ds[0]
		if got.Node != "n1" || got.Name != "echo" || got.State != registry.StateRunning || got.Encoding != "json" ||
			got.MasterPID != 100 || got.ConfigHash != "h1" || got.LastExit != "" {
			t.Fatalf("list: %+v", got)
		}
		if !got.StartedAt.Equal(started) {
			t.Fatalf("started_at %v, want %v", got.StartedAt, started)
		}
		if got.HeartbeatAt.Before(before) || got.HeartbeatAt.After(time.Now().Add(time.Second)) {
			t.Fatalf("heartbeat_at %v, want about now", got.HeartbeatAt)
		}
		if want := []string{"n1 tcp 127.0.0.1:41234", "n1 unix /run/nsfd/echo.sock"}; !reflect.DeepEqual(show(got.Endpoints), want) {
			t.Fatalf("list endpoints %q, want %q", show(got.Endpoints), want)
		}

		must(t, r.Unregister(ctx, "n1", "echo"))
		wantResolveErr(t, r, "echo", local1, registry.ErrNotFound)
		wantNames(t, r)
		must(t, r.Unregister(ctx, "n1", "echo")) // idempotent
	}},

	{"defaults", func(t *testing.T, e env) {
		d := daemon("n1", "echo", 100, "udp 127.0.0.1:5353")
		d.State = ""
		before := time.Now().Add(-time.Second)
		register(t, e.r, d)
		ds, err := e.r.List(ctx)
		must(t, err)
		if ds[0].State != registry.StateRunning || ds[0].StartedAt.Before(before) {
			t.Fatalf("state %q started_at %v, want running and now", ds[0].State, ds[0].StartedAt)
		}
		wantResolve(t, e.r, "echo", local1, "n1 udp 127.0.0.1:5353")
	}},

	{"re-register replaces endpoints", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 127.0.0.1:1", "tcp 127.0.0.1:2"))
		d := daemon("n1", "echo", 101, "unixgram /run/echo.dgram")
		d.Encoding, d.ConfigHash = "json+gzip", "h2"
		register(t, r, d)
		wantResolve(t, r, "echo", local1, "n1 unixgram /run/echo.dgram")
		if n := rows(t, r, "endpoints"); n != 1 {
			t.Fatalf("%d endpoint rows, want 1", n)
		}
		ds, err := r.List(ctx)
		must(t, err)
		if len(ds) != 1 || ds[0].MasterPID != 101 || ds[0].Encoding != "json+gzip" || ds[0].ConfigHash != "h2" {
			t.Fatalf("list: %+v", ds)
		}
	}},

	{"two nodes, one name: local first", func(t *testing.T, e env) {
		r := e.r
		register(t, r,
			daemon("n1", "echo", 100, "tcp 10.0.0.1:7001", "unix /run/echo.sock"),
			daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"))
		wantResolve(t, r, "echo", local1, "n1 tcp 10.0.0.1:7001", "n1 unix /run/echo.sock", "n2 tcp 10.0.0.2:7001")
		wantResolve(t, r, "echo", registry.ResolveOptions{LocalNode: "n2"},
			"n2 tcp 10.0.0.2:7001", "n1 tcp 10.0.0.1:7001", "n1 unix /run/echo.sock")
		got := resolve(t, r, "echo", registry.ResolveOptions{LocalNode: "n9"})
		if len(got) != 3 {
			t.Fatalf("resolve from another node: %q", got)
		}
		wantNames(t, r, "n1/echo", "n2/echo")
	}},

	{"other nodes take turns", func(t *testing.T, e env) {
		r := e.r
		register(t, r,
			daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"),
			daemon("n2", "echo", 200, "tcp 10.0.0.2:7001", "tcp 10.0.0.2:7002"),
			daemon("n3", "echo", 300, "tcp 10.0.0.3:7001"))
		n2first := []string{"n1 tcp 10.0.0.1:7001", "n2 tcp 10.0.0.2:7001", "n2 tcp 10.0.0.2:7002", "n3 tcp 10.0.0.3:7001"}
		n3first := []string{"n1 tcp 10.0.0.1:7001", "n3 tcp 10.0.0.3:7001", "n2 tcp 10.0.0.2:7001", "n2 tcp 10.0.0.2:7002"}
		seen := map[string]int{}
		for range 10 {
			got := resolve(t, r, "echo", local1)
			switch {
			case reflect.DeepEqual(got, n2first):
				seen["n2"]++
			case reflect.DeepEqual(got, n3first):
				seen["n3"]++
			default:
				t.Fatalf("resolve: %q", got)
			}
		}
		if seen["n2"] != 5 || seen["n3"] != 5 {
			t.Fatalf("first other node over 10 calls: %v, want 5 each", seen)
		}
	}},

	{"stale heartbeat", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"), daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"))
		age(t, r, "n1", time.Hour)
		wantResolve(t, r, "echo", local1, "n2 tcp 10.0.0.2:7001")
		age(t, r, "n2", registry.DefaultMaxAge+time.Second)
		wantResolveErr(t, r, "echo", local1, registry.ErrStale)
		wantResolve(t, r, "echo", registry.ResolveOptions{LocalNode: "n1", MaxAge: 2 * time.Minute}, "n2 tcp 10.0.0.2:7001")
		must(t, r.Heartbeat(ctx, "n1", 100))
		wantResolve(t, r, "echo", local1, "n1 tcp 10.0.0.1:7001")
	}},

	{"heartbeat ages in real time", func(t *testing.T, e env) {
		register(t, e.r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
		o := registry.ResolveOptions{LocalNode: "n1", MaxAge: time.Millisecond}
		eventually(t, "the heartbeat to go stale", func() bool {
			_, err := e.r.Resolve(ctx, "echo", o)
			return errors.Is(err, registry.ErrStale)
		})
		must(t, e.r.Heartbeat(ctx, "n1", 100))
		wantResolve(t, e.r, "echo", local1, "n1 tcp 10.0.0.1:7001")
	}},

	{"heartbeat by master pid", func(t *testing.T, e env) {
		r := e.r
		if err := r.Heartbeat(ctx, "n1", 100); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("heartbeat with nothing registered: %v, want registry.ErrNotFound", err)
		}
		register(t, r,
			daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"),
			daemon("n1", "http", 100, "tcp 10.0.0.1:8080"),
			daemon("n1", "old", 99, "tcp 10.0.0.1:9999"),
			daemon("n2", "echo", 100, "tcp 10.0.0.2:7001"))
		age(t, r, "n1", time.Hour)
		age(t, r, "n2", time.Hour)
		must(t, r.Heartbeat(ctx, "n1", 100))
		wantResolve(t, r, "echo", local1, "n1 tcp 10.0.0.1:7001")
		wantResolve(t, r, "http", local1, "n1 tcp 10.0.0.1:8080")
		wantResolveErr(t, r, "old", local1, registry.ErrStale)
	}},

	{"a master known alive vouches for its own rows", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"), daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"),
			daemon("n1", "old", 99, "tcp 10.0.0.1:9999"))
		age(t, r, "n1", time.Hour)
		age(t, r, "n2", time.Hour)
		alive := registry.ResolveOptions{LocalNode: "n1", AliveNode: "n1", AlivePID: 100}
		wantResolve(t, r, "echo", alive, "n1 tcp 10.0.0.1:7001")
		wantResolveErr(t, r, "old", alive, registry.ErrStale) // a previous master's row on that node
		wantResolveErr(t, r, "echo", registry.ResolveOptions{LocalNode: "n1", AliveNode: "n1", AlivePID: 99}, registry.ErrStale)
		wantResolveErr(t, r, "echo", local1, registry.ErrStale)
	}},

	{"stopping is not resolved", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"), daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"))
		must(t, r.SetState(ctx, "n1", "echo", registry.StateStopping))
		wantResolve(t, r, "echo", local1, "n2 tcp 10.0.0.2:7001")
		must(t, r.SetState(ctx, "n2", "echo", registry.StateStopping))
		wantResolveErr(t, r, "echo", local1, registry.ErrNotFound)
		wantNames(t, r, "n1/echo", "n2/echo")
		must(t, r.SetState(ctx, "n1", "echo", registry.StateRunning))
		wantResolve(t, r, "echo", local1, "n1 tcp 10.0.0.1:7001")
		if err := r.SetState(ctx, "n1", "nope", registry.StateStopping); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("set state of unknown: %v, want registry.ErrNotFound", err)
		}
	}},

	{"unknown name", func(t *testing.T, e env) {
		wantResolveErr(t, e.r, "nope", local1, registry.ErrNotFound)
		register(t, e.r, daemon("n1", "quiet", 100)) // no endpoints: nothing to dial
		wantResolveErr(t, e.r, "quiet", local1, registry.ErrNotFound)
		wantNames(t, e.r, "n1/quiet")
	}},

	{"purge node", func(t *testing.T, e env) {
		r := e.r
		register(t, r,
			daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"),
			daemon("n1", "http", 100, "tcp 10.0.0.1:8080", "tcp 10.0.0.1:8443"),
			daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"))
		must(t, r.WorkerStarted(ctx, registry.Worker{Node: "n1", Daemon: "echo", PID: 1001}))
		must(t, r.WorkerStarted(ctx, registry.Worker{Node: "n2", Daemon: "echo", PID: 2001}))
		n, err := r.PurgeNode(ctx, "n1")
		must(t, err)
		if n != 2 {
			t.Fatalf("purged %d daemons, want 2", n)
		}
		wantNames(t, r, "n2/echo")
		wantResolve(t, r, "echo", local1, "n2 tcp 10.0.0.2:7001")
		if e, w := rows(t, r, "endpoints"), rows(t, r, "workers"); e != 1 || w != 1 {
			t.Fatalf("%d endpoint and %d worker rows left, want 1 and 1 (n2's)", e, w)
		}
		wantWorkers(t, r, "n2", "echo", "2001/0/starting/0")
		if n, err := r.PurgeNode(ctx, "n1"); err != nil || n != 0 {
			t.Fatalf("second purge: %d, %v", n, err)
		}
	}},

	{"purge stale", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"), daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"))
		must(t, r.WorkerStarted(ctx, registry.Worker{Node: "n1", Daemon: "echo", PID: 1001}))
		age(t, r, "n1", time.Hour)
		n, err := r.PurgeStale(ctx, 10*time.Minute)
		must(t, err)
		if n != 1 {
			t.Fatalf("purged %d, want 1", n)
		}
		wantNames(t, r, "n2/echo")
		if e, w := rows(t, r, "endpoints"), rows(t, r, "workers"); e != 1 || w != 0 {
			t.Fatalf("%d endpoint and %d worker rows left, want 1 and 0", e, w)
		}
		if _, err := r.PurgeStale(ctx, 0); err == nil {
			t.Fatal("purge stale with age 0: no error")
		}
	}},

	{"workers", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
		started := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
		for i, pid := range []int{1003, 1001, 1002} {
			must(t, r.WorkerStarted(ctx, registry.Worker{Node: "n1", Daemon: "echo", PID: pid, Slot: i, StartedAt: started}))
		}
		wantWorkers(t, r, "n1", "echo", "1003/0/starting/0", "1001/1/starting/0", "1002/2/starting/0")
		ws, err := r.Workers(ctx, "n1", "echo")
		must(t, err)
		if !ws[0].StartedAt.Equal(started) {
			t.Fatalf("started_at %v, want %v", ws[0].StartedAt, started)
		}
		must(t, r.WorkerStarted(ctx, registry.Worker{Node: "n1", Daemon: "echo", PID: 1001, Slot: 1, State: "busy", Requests: 5,
			LastExit: "exit status 1"}))
		wantWorkers(t, r, "n1", "echo", "1003/0/starting/0", "1001/1/busy/5", "1002/2/starting/0")

		must(t, r.WorkerExited(ctx, "n1", "echo", 1002, "signal: killed"))
		must(t, r.WorkerExited(ctx, "n1", "echo", 1002, "signal: killed")) // already gone
		wantWorkers(t, r, "n1", "echo", "1003/0/starting/0", "1001/1/busy/5")
		ds, err := r.List(ctx)
		must(t, err)
		if ds[0].LastExit != "signal: killed" {
			t.Fatalf("daemon last_exit %q", ds[0].LastExit)
		}

		must(t, r.SyncWorkers(ctx, "n1", "echo", []registry.Worker{
			{PID: 1001, Slot: 1, State: "idle", Requests: 12, StartedAt: started, LastExit: "exit status 1"},
			{PID: 1004, Slot: 2, State: "busy", Requests: 1},
		}))
		wantWorkers(t, r, "n1", "echo", "1001/1/idle/12", "1004/2/busy/1")
		ws, err = r.Workers(ctx, "n1", "echo")
		must(t, err)
		if ws[0].LastExit != "exit status 1" || !ws[0].StartedAt.Equal(started) ||
			time.Since(ws[1].StartedAt) > time.Minute {
			t.Fatalf("after sync: %+v", ws)
		}
		must(t, r.SyncWorkers(ctx, "n1", "echo", nil))
		wantWorkers(t, r, "n1", "echo")
		wantWorkers(t, r, "n1", "nope")
	}},

	{"workers of an unknown daemon", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
		for what, err := range map[string]error{
			"started": r.WorkerStarted(ctx, registry.Worker{Node: "n1", Daemon: "nope", PID: 1}),
			"exited":  r.WorkerExited(ctx, "n1", "nope", 1, "exit status 0"),
			"sync":    r.SyncWorkers(ctx, "n1", "nope", []registry.Worker{{PID: 1}}),
			"sync 0":  r.SyncWorkers(ctx, "n1", "nope", nil),
			"node":    r.WorkerStarted(ctx, registry.Worker{Node: "n2", Daemon: "echo", PID: 1}),
		} {
			if !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("%s: %v, want registry.ErrNotFound", what, err)
			}
		}
		if n := rows(t, r, "workers"); n != 0 {
			t.Fatalf("%d worker rows", n)
		}
	}},

	{"unregister cascades", func(t *testing.T, e env) {
		r := e.r
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001", "tcp 10.0.0.1:7002"),
			daemon("n1", "http", 100, "tcp 10.0.0.1:8080"))
		must(t, r.SyncWorkers(ctx, "n1", "echo", []registry.Worker{{PID: 1}, {PID: 2, Slot: 1}}))
		must(t, r.WorkerStarted(ctx, registry.Worker{Node: "n1", Daemon: "http", PID: 3}))
		must(t, r.Unregister(ctx, "n1", "echo"))
		if e, w := rows(t, r, "endpoints"), rows(t, r, "workers"); e != 1 || w != 1 {
			t.Fatalf("%d endpoint and %d worker rows left, want http's 1 and 1", e, w)
		}
		wantWorkers(t, r, "n1", "echo")
		// Registering anew starts with no workers.
		register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
		wantWorkers(t, r, "n1", "echo")
	}},

	{"list", func(t *testing.T, e env) {
		r := e.r
		register(t, r,
			daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"),
			daemon("n1", "quiet", 100),
			daemon("n1", "echo", 100, "tcp 10.0.0.1:7001", "unix /run/echo.sock"))
		must(t, r.SetState(ctx, "n2", "echo", registry.StateStopping))
		ds, err := r.List(ctx)
		must(t, err)
		var got []string
		for _, d := range ds {
			got = append(got, fmt.Sprintf("%s/%s %s %q", d.Node, d.Name, d.State, show(d.Endpoints)))
		}
		want := []string{
			`n1/echo running ["n1 tcp 10.0.0.1:7001" "n1 unix /run/echo.sock"]`,
			`n2/echo stopping ["n2 tcp 10.0.0.2:7001"]`,
			`n1/quiet running []`,
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("list:\n got %q\nwant %q", got, want)
		}
	}},

	{"invalid registrations", func(t *testing.T, e env) {
		for _, d := range []registry.Daemon{
			daemon("", "echo", 1, "tcp 127.0.0.1:1"),
			daemon("n1", "", 1, "tcp 127.0.0.1:1"),
			daemon("n1", "echo", 1, "sctp 127.0.0.1:1"),
			daemon("n1", "echo", 1, "tcp "),
		} {
			if err := e.r.Register(ctx, d); err == nil {
				t.Errorf("register %+v: no error", d)
			}
		}
		wantNames(t, e.r)
	}},

	{"unhealthy endpoints are skipped while a healthy one exists", func(t *testing.T, e env) {
		r := e.r
		sick := func(d registry.Daemon, unhealthy bool) registry.Daemon {
			for i := range d.Endpoints {
				d.Endpoints[i].Unhealthy = unhealthy
			}
			return d
		}
		n1 := daemon("n1", "web", 100, "tcp 10.0.0.1:80", "unix /run/web.sock")
		n2 := daemon("n2", "web", 200, "tcp 10.0.0.2:80")
		register(t, r, sick(n1, true), n2)
		wantResolve(t, r, "web", local1, "n2 tcp 10.0.0.2:80")
		// None healthy: all of them, marked, rather than nothing.
		register(t, r, sick(n2, true))
		eps, err := r.Resolve(ctx, "web", local1)
		must(t, err)
		if got, want := show(eps), []string{"n1 tcp 10.0.0.1:80", "n1 unix /run/web.sock", "n2 tcp 10.0.0.2:80"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("resolve with none healthy: %q, want %q", got, want)
		}
		for _, ep := range eps {
			if !ep.Unhealthy {
				t.Fatalf("%+v is not marked unhealthy", ep)
			}
		}
		register(t, r, sick(n1, false))
		wantResolve(t, r, "web", local1, "n1 tcp 10.0.0.1:80", "n1 unix /run/web.sock")
		ds, err := r.List(ctx)
		must(t, err)
		for _, d := range ds {
			for _, ep := range d.Endpoints {
				if ep.Unhealthy != (d.Node == "n2") {
					t.Fatalf("list: %s %+v", d.Node, ep)
				}
			}
		}
	}},

	{"migration 4 keeps the endpoints of a version 3 registry, healthy", func(t *testing.T, e env) {
		register(t, e.r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
		// Take the registry back to version 3, as an older nsfd left it.
		w := storeOf(t, e.r).Writer()
		_, err := w.ExecContext(ctx, `ALTER TABLE endpoints DROP COLUMN unhealthy`)
		must(t, err)
		_, err = w.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = 4`)
		must(t, err)
		again := open(t, e.typ, e.dsn)
		eps, err := again.Resolve(ctx, "echo", local1)
		must(t, err)
		if len(eps) != 1 || eps[0].Unhealthy || eps[0].Address != "10.0.0.1:7001" {
			t.Fatalf("after migration: %+v", eps)
		}
		var v int
		must(t, storeOf(t, again).Reader().QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v))
		if v != 4 || sqlstore.SchemaVersion() != 4 {
			t.Fatalf("version %d, SchemaVersion %d; want 4", v, sqlstore.SchemaVersion())
		}
	}},

	{"migrations are idempotent", func(t *testing.T, e env) {
		register(t, e.r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
		again := open(t, e.typ, e.dsn)
		wantResolve(t, again, "echo", local1, "n1 tcp 10.0.0.1:7001")
		if n := rows(t, again, "schema_migrations"); n != sqlstore.SchemaVersion() {
			t.Fatalf("%d schema_migrations rows, want %d", n, sqlstore.SchemaVersion())
		}
		var v int
		must(t, storeOf(t, again).Reader().QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v))
		if v != sqlstore.SchemaVersion() {
			t.Fatalf("version %d, want %d", v, sqlstore.SchemaVersion())
		}
	}},

	{"concurrent opens of a new registry", func(t *testing.T, e env) {
		// e.r migrated e.dsn already; race on a fresh one.
		dsn := engineOf(e.typ).dsn(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				r, err := registry.Open(ctx, e.typ, dsn)
				if err == nil {
					err = r.Register(ctx, daemon(fmt.Sprintf("n%d", i), "echo", i, "tcp 10.0.0.1:7001"))
					err = errors.Join(err, r.Close())
				}
				errs[i] = err
			})
		}
		wg.Wait()
		must(t, errors.Join(errs...))
		wantNames(t, open(t, e.typ, dsn), "n0/echo", "n1/echo", "n2/echo", "n3/echo")
	}},

	{"concurrent writers and readers", func(t *testing.T, e env) {
		// Two handles on one registry, as the master and a client in two
		// processes would have; each writes its own node's rows.
		handles := []registry.Registry{e.r, open(t, e.typ, e.dsn)}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for h, r := range handles {
			for g := range 3 {
				node := fmt.Sprintf("n%d-%d", h, g)
				wg.Go(func() { errs <- churn(r, node, 30) })
			}
			wg.Go(func() {
				for range 100 {
					if _, err := r.Resolve(ctx, "echo", registry.ResolveOptions{}); err != nil && !errors.Is(err, registry.ErrNotFound) {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := len(names(t, e.r)); got != 6 {
			t.Fatalf("%d daemons registered, want 6", got)
		}
	}},

	{"encodings", func(t *testing.T, e env) {
		// Resolve gives each endpoint its daemon's encoding: what a client
		// must speak to it.
		d1, d2 := daemon("n1", "kv", 1, "tcp 10.0.0.1:1"), daemon("n2", "kv", 2, "tcp 10.0.0.2:1")
		d2.Encoding = "json+gzip"
		register(t, e.r, d1, d2, daemon("n1", "other", 1, "tcp 10.0.0.1:2"))
		encodings := func() map[string]string {
			eps, err := e.r.Resolve(ctx, "kv", local1)
			must(t, err)
			out := map[string]string{}
			for _, ep := range eps {
				out[ep.Node] = ep.Encoding
			}
			return out
		}
		if got, want := encodings(), map[string]string{"n1": "json", "n2": "json+gzip"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("encodings = %v, want %v", got, want)
		}
		must(t, e.r.SetState(ctx, "n2", "kv", registry.StateStopping))
		if got, want := encodings(), map[string]string{"n1": "json"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("encodings after n2 stops = %v, want %v", got, want)
		}
		ds, err := e.r.List(ctx)
		must(t, err)
		for _, d := range ds {
			for _, ep := range d.Endpoints {
				if ep.Encoding != d.Encoding {
					t.Fatalf("list: endpoint %+v of daemon with encoding %q", ep, d.Encoding)
				}
			}
		}
	}},

	{"closed", func(t *testing.T, e env) {
		r, err := registry.Open(ctx, e.typ, e.dsn)
		must(t, err)
		must(t, r.Close())
		must(t, r.Close())
		if _, err := r.Resolve(ctx, "echo", local1); err == nil || errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("resolve after close: %v", err)
		}
	}},
}

func engineOf(typ string) engine {
	for _, e := range engines {
		if e.typ == typ {
			return e
		}
	}
	panic(typ)
}

// churn is a master's write pattern for node, n rounds: register, a worker
// starts, heartbeat, sync, the worker exits, re-register.
func churn(r registry.Registry, node string, n int) error {
	d := daemon(node, "echo", 100, "tcp 10.0.0.1:7001")
	for i := range n {
		if err := r.Register(ctx, d); err != nil {
			return err
		}
		if err := r.WorkerStarted(ctx, registry.Worker{Node: node, Daemon: "echo", PID: i + 1}); err != nil {
			return err
		}
		if err := r.Heartbeat(ctx, node, 100); err != nil {
			return err
		}
		if err := r.SyncWorkers(ctx, node, "echo", []registry.Worker{{PID: i + 1, State: "idle", Requests: int64(i)}}); err != nil {
			return err
		}
		if err := r.WorkerExited(ctx, node, "echo", i+1, "exit status 0"); err != nil {
			return err
		}
	}
	return nil
}

func TestOpenUnknownType(t *testing.T) {
	if _, err := registry.Open(ctx, "mysql", "x"); err == nil || !strings.Contains(err.Error(), `"mysql"`) {
		t.Fatalf("open mysql: %v", err)
	}
}
