package supervisor

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/registry"
	_ "github.com/nsfd/nsfd/registry/sqlite" // the registry the tests open
)

// flaky is a real SQLite registry that can be made unreachable.
type flaky struct {
	registry.Registry
	down       atomic.Bool
	heartbeats atomic.Int64 // calls, failed ones included: the registrar's clock, for tests
}

var errDown = errors.New("connection refused")

func (f *flaky) Register(ctx context.Context, d registry.Daemon) error {
	if f.down.Load() {
		return errDown
	}
	return f.Registry.Register(ctx, d)
}

func (f *flaky) Heartbeat(ctx context.Context, node string, pid int) error {
	f.heartbeats.Add(1)
	if f.down.Load() {
		return errDown
	}
	return f.Registry.Heartbeat(ctx, node, pid)
}

func (f *flaky) SyncWorkers(ctx context.Context, node, daemon string, ws []registry.Worker) error {
	if f.down.Load() {
		return errDown
	}
	return f.Registry.SyncWorkers(ctx, node, daemon, ws)
}

func (f *flaky) Unregister(ctx context.Context, node, name string) error {
	if f.down.Load() {
		return errDown
	}
	return f.Registry.Unregister(ctx, node, name)
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRegistrarFollowsStatesAndSurvivesAnOutage(t *testing.T) {
	ctx := context.Background()
	real, err := registry.Open(ctx, registry.TypeSQLite, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	f := &flaky{Registry: real}
	logs := &logBuf{}
	r := newRegistrar(registry.TypeSQLite, "", "n1", 50*time.Millisecond, hclog.New(&hclog.LoggerOptions{Output: logs}))
	r.open = func(context.Context) (registry.Registry, error) { return f, nil }
	rctx, cancel := context.WithCancel(ctx)
	go r.run(rctx)

	resolves := func() bool {
		eps, err := real.Resolve(ctx, "echo", registry.ResolveOptions{LocalNode: "n1", MaxAge: time.Minute})
		return err == nil && len(eps) == 1 && eps[0].Address == "127.0.0.1:7001"
	}
	r.workerStarted("echo", 101, 0)
	r.define(registry.Daemon{Name: "echo", Encoding: "json", Endpoints: []registry.Endpoint{{Proto: "tcp", Address: "127.0.0.1:7001"}}})
	// Not before its pool runs.
	r.state("echo", "starting")
	hb := f.heartbeats.Load()
	waitUntil(t, "two heartbeats", func() bool { return f.heartbeats.Load() >= hb+2 })
	if resolves() {
		t.Fatal("registered before its pool ran")
	}
	r.state("echo", "running")
	waitUntil(t, "registered", resolves)
	waitUntil(t, "worker row", func() bool {
		ws, _ := real.Workers(ctx, "n1", "echo")
		return len(ws) == 1 && ws[0].PID == 101
	})

	// The registry goes away: changes wait, the failure is logged once.
	f.down.Store(true)
	r.workerStarted("echo", 102, 1)
	r.workerExited("echo", 101, "crashed: signal killed")
	waitUntil(t, "the failure logged", func() bool { return strings.Contains(logs.String(), "registry unreachable") })
	hb = f.heartbeats.Load()
	waitUntil(t, "several retries", func() bool { return f.heartbeats.Load() >= hb+4 })
	if n := strings.Count(logs.String(), "registry unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, logs.String())
	}
	// Back: everything is written again.
	f.down.Store(false)
	waitUntil(t, "the worker change applied", func() bool {
		ws, _ := real.Workers(ctx, "n1", "echo")
		return len(ws) == 1 && ws[0].PID == 102
	})
	if !strings.Contains(logs.String(), "registry reachable again") {
		t.Error("the recovery is not logged")
	}

	// Removed: unregistered.
	r.remove("echo")
	waitUntil(t, "unregistered", func() bool { return !resolves() })
	cancel()
	<-r.done
}

// TestResolverVouchesForItsOwnNode: a master answering its own workers is
// alive, so its daemons resolve even when its heartbeat in the registry is
// older than MaxAge (a write slowed by load), while a plain reader of the
// registry is told they are stale.
func TestResolverVouchesForItsOwnNode(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.Open(ctx, registry.TypeSQLite, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	r := newRegistrar(registry.TypeSQLite, "", "n1", time.Hour, hclog.NewNullLogger())
	for _, n := range []struct {
		node string
		pid  int
	}{{"n1", r.pid}, {"n2", r.pid + 1}} {
		d := registry.Daemon{Node: n.node, Name: "echo", State: registry.StateRunning, MasterPID: n.pid, Encoding: "json",
			Endpoints: []registry.Endpoint{{Proto: "tcp", Address: n.node + ":7001"}}}
		if err := reg.Register(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	r.live.Store(&liveRegistry{reg})
	o := registry.ResolveOptions{MaxAge: time.Millisecond}
	waitUntil(t, "the heartbeats to go stale", func() bool {
		_, err := reg.Resolve(ctx, "echo", o)
		return errors.Is(err, registry.ErrStale)
	})
	eps, err := r.resolve(ctx, "echo", o)
	if err != nil || len(eps) != 1 || eps[0].Node != "n1" {
		t.Fatalf("the master's own resolve: %v %v, want n1's endpoint alone", eps, err)
	}
}
