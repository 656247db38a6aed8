package prefork

import (
	"context"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A pool handed over within one process, as an upgrade does across an
// exec: frozen, its workers' pipes exported from one pump, adopted by a new
// pool on another pump. The workers are the same processes, serve on, and
// their exits reach the new pool. A frozen pool released (the exec failed)
// runs on as before.
func TestPoolHandover(t *testing.T) {
	ctx := context.Background()
	hv, ok := testProcs.(Handover)
	if !ok {
		t.Skipf("the %s backend cannot hand workers over", testBackend)
	}
	p, l, _ := newTestPool(t, "pool-echo", func(c *Config) {
		c.Policy = PolicyOptions{MinServers: 2, MaxServers: 2, MinSpareServers: 0, MaxSpareServers: 1, MinChildTTL: time.Hour}
	})
	waitFor(t, "2 ready workers", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 2 })
	pids := readyWorkers(status(t, p))
	slices.Sort(pids)

	// Frozen and released: nothing changed.
	_, release, err := p.Freeze(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, restore := hv.Export()
	restore()
	release()
	echoOnce(t, l.Addr, "after a failed exec")
	if got := readyWorkers(status(t, p)); !sameSet(got, pids) {
		t.Fatalf("workers %v after release, want %v", got, pids)
	}

	// Handed over.
	h, release, err := p.Freeze(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pipes, _ := hv.Export()
	if len(h.Workers) != 2 || h.NotifyFD < 0 {
		t.Fatalf("hand-over: %+v", h)
	}
	for i := range h.Workers {
		w := &h.Workers[i]
		w.Pipes = pipes[w.PID]
		if w.Pipes.Stdout < 0 || w.Pipes.Stderr < 0 {
			t.Errorf("worker %d: pipes %+v", w.PID, w.Pipes)
		}
	}
	// The new pool takes a copy of the notify socket: the old one's stays
	// with the old pool, which is left without workers.
	if h.NotifyFD, err = unix.Dup(h.NotifyFD); err != nil {
		t.Fatal(err)
	}
	// The old pool's reader must not take the datagrams (as after an exec):
	// its socket closes, the socket file stays for the new one.
	p.nsock.(*notifySocket).conn.Close()
	p.workers, p.nsock, p.notes, p.stopping = map[int]*worker{}, nil, noNotes{}, true
	release()

	pump2, err := OpenPump()
	if err != nil {
		t.Fatal(err)
	}
	defer pump2.Close()
	cfg := p.cfg
	cfg.Procs = pump2
	exited := make(chan struct{}, 4)
	cfg.Observer = func(e Event) {
		if e.Kind == EventExit {
			exited <- struct{}{}
		}
	}
	p2, err := AdoptPool(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	st := status(t, p2)
	if got := readyWorkers(st); !sameSet(got, pids) || st.State != PoolRunning {
		t.Fatalf("adopted pool: state %s workers %v, want %v", st.State, got, pids)
	}
	for i := range 20 {
		echoOnce(t, l.Addr, "adopted "+string(rune('a'+i)))
	}
	// The workers' BUSY=1 reach the adopted notify socket.
	waitFor(t, "requests counted by the new pool", 5*time.Second, func() bool { return status(t, p2).Requests >= 20 })
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p2.Stop(sctx); err != nil {
		t.Fatalf("stop the adopted pool: %v", err)
	}
	for range 2 {
		select {
		case <-exited:
		default:
			t.Fatal("an adopted worker's exit was not reported")
		}
	}
}

func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
