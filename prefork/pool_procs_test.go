package prefork

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	proto "github.com/nsfd/nsfd/worker"
)

// fakeProcs is a process backend that starts nothing: it records the
// commands, hands out process handles with pids no process can have, and
// reports exits when the test says.
type fakeProcs struct {
	mu      sync.Mutex
	cmds    []Command
	procs   []*Process
	drops   []any
	started chan int // the index of each command started
}

var _ Procs = (*fakeProcs)(nil)

// fakePidBase is above the largest pid Linux allows (1<<22): a signal the
// pool sends to a fake worker reaches nobody.
const fakePidBase = 1 << 23

func (f *fakeProcs) Start(ctx context.Context, c Command) (*Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	proc := newProcess(fakePidBase + len(f.procs))
	f.cmds, f.procs = append(f.cmds, c), append(f.procs, proc)
	f.started <- len(f.cmds) - 1
	return proc, nil
}

func (f *fakeProcs) Drop(owner any) {
	f.mu.Lock()
	f.drops = append(f.drops, owner)
	f.mu.Unlock()
}

// exit reports the exit of the i-th process started, as a backend does.
func (f *fakeProcs) exit(i int) {
	f.mu.Lock()
	c, proc := f.cmds[i], f.procs[i]
	f.mu.Unlock()
	c.Exited(proc)
}

func (f *fakeProcs) command(i int) Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cmds[i]
}

// nopWriter is the one writer the test's Output hands out.
type nopWriter struct{}

func (*nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (*nopWriter) Close() error                { return nil }

// TestPoolRunsItsWorkersOnItsProcs: a pool starts nothing without a
// process backend; with one, it starts every worker there (the shim, the
// listeners as fds 3.., the protocol's environment, its Output, itself as
// the owner), learns of exits only from it, and drops its watches there
// once stopped.
func TestPoolRunsItsWorkersOnItsProcs(t *testing.T) {
	ctx := context.Background()
	l, err := Bind(ctx, ListenSpec{Network: "tcp", Address: "127.0.0.1:0", UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := &nopWriter{}
	var mu sync.Mutex
	var exits []Event
	cfg := Config{
		Name:       "t",
		Node:       "n1",
		Command:    []string{"/usr/bin/worker", "--flag"},
		Listeners:  []*Listener{l},
		NotifyPath: t.TempDir() + "/n.sock",
		Policy:     PolicyOptions{MinServers: 2, MaxServers: 3, MaxSpareServers: 2},
		Exec:       ExecOptions{Umask: -1, UID: -1, GID: -1},
		Shim:       []string{"/usr/sbin/nsfd", ShimArg},
		Output:     func(int, string) io.WriteCloser { return out },
		Observer: func(e Event) {
			if e.Kind == EventExit {
				mu.Lock()
				exits = append(exits, e)
				mu.Unlock()
			}
		},
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err == nil || !strings.Contains(err.Error(), "no process backend") {
		t.Fatalf("start without Procs: %v", err)
	}

	procs := &fakeProcs{started: make(chan int, 10)}
	cfg.Procs = procs
	if p, err = NewPool(cfg); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	next := func() int {
		t.Helper()
		select {
		case i := <-procs.started:
			return i
		case <-time.After(10 * time.Second):
			t.Fatal("no worker started")
		}
		return -1
	}
	first, second := next(), next()
	slots := map[string]bool{}
	for _, i := range []int{first, second} {
		c := procs.command(i)
		dash := slices.Index(c.Argv, "--")
		if !slices.Equal(c.Argv[:2], cfg.Shim) || dash < 0 || !slices.Equal(c.Argv[dash+1:], cfg.Command) || !slices.Contains(c.Argv, "-ppid") {
			t.Errorf("argv %q; want the shim, its flags, --, the command", c.Argv)
		}
		for _, kv := range []string{proto.EnvListenFDs + "=1", proto.EnvDaemon + "=t", proto.EnvNode + "=n1"} {
			if !slices.Contains(c.Env, kv) {
				t.Errorf("environment lacks %s", kv)
			}
		}
		// The daemon's notify socket, or with per-worker sockets (macOS,
		// FreeBSD) the worker's own beside it, PATH.N.
		ns := proto.EnvNotifySocket + "=" + cfg.NotifyPath
		if !slices.ContainsFunc(c.Env, func(kv string) bool { return kv == ns || strings.HasPrefix(kv, ns+".") }) {
			t.Errorf("environment lacks %s", ns)
		}
		for _, kv := range c.Env {
			if v, ok := strings.CutPrefix(kv, proto.EnvWorker+"="); ok {
				slots[v] = true
			}
		}
		if len(c.Files) != 1 || c.Files[0] != l.File() || c.Owner != p {
			t.Errorf("files %v, owner %v; want the listener's file and the pool", c.Files, c.Owner)
		}
		if w := c.Output(1, "stdout"); w != out {
			t.Errorf("the command's Output is not the pool's")
		}
	}
	if !slots["0"] || !slots["1"] {
		t.Errorf("slots %v; want 0 and 1", slots)
	}

	// An exit comes from the backend only; the pool replaces the worker.
	procs.exit(first)
	third := next()
	mu.Lock()
	if len(exits) != 1 || exits[0].PID != fakePidBase+first || exits[0].Cause != CauseCrashed {
		t.Errorf("exits %+v; want the first worker's, crashed (no status to read)", exits)
	}
	mu.Unlock()

	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(ctx) }()
	waitFor(t, "stopping", 10*time.Second, func() bool { st, _ := p.Status(ctx); return st.State == PoolStopping })
	procs.mu.Lock()
	dropped := len(procs.drops)
	procs.mu.Unlock()
	if dropped != 0 {
		t.Fatal("the pool dropped its watches before its workers exited")
	}
	procs.exit(second)
	procs.exit(third)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if len(procs.drops) != 1 || procs.drops[0] != p {
		t.Errorf("drops %v; want the pool's, once", procs.drops)
	}
	if len(procs.cmds) != 3 {
		t.Errorf("%d workers started; want 3", len(procs.cmds))
	}
}
