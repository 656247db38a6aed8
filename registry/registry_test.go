package registry_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

// A registryCase is a case of the table TestRegistry runs.
type registryCase struct {
	name string
	run  func(t *testing.T, e env)
}

// registryCases is the table, in order: resolveCases (resolve_test.go),
// workerCases (workers_test.go), then the cases below.
var registryCases = slices.Concat(resolveCases, workerCases, []registryCase{
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
})

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
