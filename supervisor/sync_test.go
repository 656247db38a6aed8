package supervisor

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/registry"
)

// syncCounting counts SyncWorkers calls and PurgeStale calls.
type syncCounting struct {
	*flaky
	syncs, purges atomic.Int64
}

func (s *syncCounting) SyncWorkers(ctx context.Context, node, daemon string, ws []registry.Worker) error {
	s.syncs.Add(1)
	return s.flaky.SyncWorkers(ctx, node, daemon, ws)
}

func (s *syncCounting) PurgeStale(ctx context.Context, d time.Duration) (int, error) {
	s.purges.Add(1)
	return s.flaky.PurgeStale(ctx, d)
}

// TestHeartbeatWritesOnlyChanges: a heartbeat syncs the worker rows of a
// daemon only when its workers or their counters changed, and purges
// other nodes' stale rows every purgeEvery heartbeats, not every one.
func TestHeartbeatWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	real, err := registry.Open(ctx, registry.TypeSQLite, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	reg := &syncCounting{flaky: &flaky{Registry: real}}
	r := newRegistrar(registry.TypeSQLite, "", "n1", 10*time.Millisecond, hclog.NewNullLogger())
	r.open = func(context.Context) (registry.Registry, error) { return reg, nil }
	var (
		mu       sync.Mutex
		requests int64
	)
	started := time.Now().Truncate(time.Millisecond)
	r.counters = func(context.Context) map[string][]registry.Worker {
		mu.Lock()
		defer mu.Unlock()
		return map[string][]registry.Worker{"echo": {{PID: 101, Slot: 0, State: "idle", StartedAt: started, Requests: requests}}}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); <-r.done }()
	go r.run(rctx)
	r.workerStarted("echo", 101, 0)
	r.define(registry.Daemon{Name: "echo", Encoding: "json", Endpoints: []registry.Endpoint{{Proto: "tcp", Address: "127.0.0.1:7001"}}})
	r.state("echo", "running")
	waitUntil(t, "the counters written", func() bool {
		ws, _ := real.Workers(ctx, "n1", "echo")
		return len(ws) == 1 && ws[0].State == "idle"
	})
	hb, syncs := reg.heartbeats.Load(), reg.syncs.Load()
	waitUntil(t, "30 heartbeats", func() bool { return reg.heartbeats.Load() >= hb+30 })
	if n := reg.syncs.Load() - syncs; n > 1 {
		t.Fatalf("%d syncs in 30 heartbeats with nothing changed", n)
	}
	if p := reg.purges.Load(); p < 2 || p > (reg.heartbeats.Load()/purgeEvery)+1 {
		t.Fatalf("%d purges in %d heartbeats, want one every %d", p, reg.heartbeats.Load(), purgeEvery)
	}
	// The counters move: the next heartbeat writes them.
	mu.Lock()
	requests = 42
	mu.Unlock()
	waitUntil(t, "the new counters written", func() bool {
		ws, _ := real.Workers(ctx, "n1", "echo")
		return len(ws) == 1 && ws[0].Requests == 42
	})
}
