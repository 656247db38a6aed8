package registry_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// TestEndpointTLS: the registry records which endpoints want TLS, and the
// name their certificate is verified against; Resolve and List give them.
func TestEndpointTLS(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			r := open(t, e.typ, e.dsn(t))
			d := daemon("n1", "kv", 100)
			d.Endpoints = []registry.Endpoint{
				{Proto: registry.ProtoTCP, Address: "10.0.0.1:7001", TLS: true, ServerName: "kv.example"},
				{Proto: registry.ProtoUnix, Address: "/run/nsfd/kv.sock"},
			}
			register(t, r, d)
			eps, err := r.Resolve(ctx, "kv", local1)
			must(t, err)
			want := []registry.Endpoint{
				{Node: "n1", Daemon: "kv", Proto: registry.ProtoTCP, Address: "10.0.0.1:7001", Encoding: "json", TLS: true, ServerName: "kv.example"},
				{Node: "n1", Daemon: "kv", Proto: registry.ProtoUnix, Address: "/run/nsfd/kv.sock", Encoding: "json"},
			}
			if !reflect.DeepEqual(eps, want) {
				t.Fatalf("resolve:\n got %+v\nwant %+v", eps, want)
			}
			ds, err := r.List(ctx)
			must(t, err)
			if len(ds) != 1 || !reflect.DeepEqual(ds[0].Endpoints, want) {
				t.Fatalf("list: %+v", ds)
			}
		})
	}
}

// TestMigrationKeepsEndpointsPlain: a registry made before endpoints
// recorded TLS (schema 2) is brought up to date when opened, and its
// endpoints are plain.
func TestMigrationKeepsEndpointsPlain(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			dsn := e.dsn(t)
			r := open(t, e.typ, dsn)
			register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
			// Back to schema 2, as an older nsfd left it.
			w := storeOf(t, r).Writer()
			for _, q := range []string{
				`ALTER TABLE endpoints DROP COLUMN tls`,
				`ALTER TABLE endpoints DROP COLUMN server_name`,
				`ALTER TABLE endpoints DROP COLUMN unhealthy`,
				`DELETE FROM schema_migrations WHERE version >= 3`,
			} {
				if _, err := w.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			again := open(t, e.typ, dsn)
			eps, err := again.Resolve(ctx, "echo", local1)
			must(t, err)
			if len(eps) != 1 || eps[0].TLS || eps[0].ServerName != "" || eps[0].Address != "10.0.0.1:7001" {
				t.Fatalf("after the migration: %+v", eps)
			}
		})
	}
}

// heard collects what a watch reports.
type heard struct {
	mu    sync.Mutex
	names []string
	ready chan struct{}
}

func (h *heard) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.names...)
}

// watch watches r until the test ends.
func watch(t *testing.T, r registry.Registry) *heard {
	t.Helper()
	w, ok := r.(registry.Watcher)
	if !ok {
		t.Fatalf("%T is not a registry.Watcher", r)
	}
	h := &heard{ready: make(chan struct{})}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(wctx, func() { close(h.ready) }, func(name string) {
			h.mu.Lock()
			h.names = append(h.names, name)
			h.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("watch ended with %v, want context.Canceled", err)
		}
	})
	select {
	case <-h.ready:
	case err := <-done:
		t.Fatalf("watch failed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("watch not ready after 10s")
	}
	return h
}

// TestWatchHearsOtherProcesses: a change made through another handle (as
// another process would make it) reaches a watch: on PostgreSQL with the
// daemon's name (NOTIFY), AnyName for a purge; on SQLite, as AnyName (a
// write to the file).
func TestWatchHearsOtherProcesses(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			dsn := e.dsn(t)
			r, other := open(t, e.typ, dsn), open(t, e.typ, dsn)
			h := watch(t, r)
			step := func(what string, want string, change func()) {
				t.Helper()
				n := len(h.got())
				change()
				eventually(t, what+" heard", func() bool {
					got := h.got()[n:]
					for _, name := range got {
						if name == want || e.typ == registry.TypeSQLite && name == registry.AnyName {
							return true
						}
					}
					return false
				})
			}
			step("register", "kv", func() { register(t, other, daemon("n2", "kv", 200, "tcp 10.0.0.2:7001")) })
			step("set state", "kv", func() { must(t, other.SetState(ctx, "n2", "kv", registry.StateStopping)) })
			step("unregister", "kv", func() { must(t, other.Unregister(ctx, "n2", "kv")) })
			register(t, other, daemon("n3", "echo", 300, "tcp 10.0.0.3:7001"))
			step("purge node", registry.AnyName, func() {
				if n, err := other.PurgeNode(ctx, "n3"); err != nil || n != 1 {
					t.Fatalf("purge: %d, %v", n, err)
				}
			})
			if e.typ == registry.TypePostgres {
				for _, name := range h.got() {
					if name != "kv" && name != "echo" && name != registry.AnyName {
						t.Errorf("heard %q", name)
					}
				}
			}
		})
	}
}

// TestPurgeNothingAnnouncesNothing: a purge that deletes nothing, which
// every master runs at every heartbeat, wakes no watcher.
func TestPurgeNothingAnnouncesNothing(t *testing.T) {
	r := open(t, registry.TypePostgres, pg.Get(t).NewDatabase(t))
	h := watch(t, r)
	register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
	eventually(t, "register heard", func() bool { return len(h.got()) == 1 })
	for range 3 {
		if n, err := r.PurgeStale(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("purge stale: %d, %v", n, err)
		}
		if n, err := r.PurgeNode(ctx, "n9"); err != nil || n != 0 {
			t.Fatalf("purge node: %d, %v", n, err)
		}
	}
	must(t, r.Unregister(ctx, "n1", "echo")) // a change after the purges: heard after theirs would be
	eventually(t, "unregister heard", func() bool { return len(h.got()) == 2 })
	if got := h.got(); !reflect.DeepEqual(got, []string{"echo", "echo"}) {
		t.Fatalf("heard %q, want only the register and the unregister", got)
	}
}

// TestClock: the registry tells its time, the clock of its heartbeats.
func TestClock(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			r := open(t, e.typ, e.dsn(t))
			c, ok := r.(registry.Clock)
			if !ok {
				t.Fatalf("%T is not a registry.Clock", r)
			}
			before := time.Now().Add(-time.Second)
			now, err := c.Now(ctx)
			must(t, err)
			if now.Before(before) || now.After(time.Now().Add(time.Second)) {
				t.Fatalf("registry time %v, local %v", now, time.Now())
			}
			register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
			ds, err := r.List(ctx)
			must(t, err)
			if now2, _ := c.Now(ctx); ds[0].HeartbeatAt.After(now2) {
				t.Fatalf("heartbeat %v after the registry's now %v", ds[0].HeartbeatAt, now2)
			}
		})
	}
}
