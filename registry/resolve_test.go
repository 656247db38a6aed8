package registry_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// resolveCases are the cases of TestRegistry about registering and
// resolving: endpoint order, heartbeats and staleness, state.
var resolveCases = []registryCase{
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
}
