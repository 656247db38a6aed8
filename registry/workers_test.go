package registry_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

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

// workerCases are the cases of TestRegistry about purging, workers,
// unregistering and listing.
var workerCases = []registryCase{
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
}
