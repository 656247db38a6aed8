package client_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/queue"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// serveName serves h on loopback and registers it as name of node "n1".
func serveName(tb testing.TB, reg registry.Registry, name string, h wire.Handler) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wire.Serve(ctx, l, h) }()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	err = reg.Register(context.Background(), registry.Daemon{Node: "n1", Name: name, Encoding: "json", MasterPID: 1,
		Endpoints: []registry.Endpoint{{Proto: registry.ProtoTCP, Address: l.Addr().String()}}})
	if err != nil {
		tb.Fatal(err)
	}
}

// asyncSetup is a registry with a queue daemon and a daemon "slow" whose
// command "work" is answered through the queue once release is closed (or
// gets a value: the response to store).
type asyncSetup struct {
	reg     registry.Registry
	c       *client.Client
	release chan *wire.Response
	ids     chan string
}

func newAsync(t *testing.T) *asyncSetup {
	t.Helper()
	reg, err := registry.Open(context.Background(), registry.TypeSQLite, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	sp, err := queue.SpoolOf(reg)
	if err != nil {
		t.Fatal(err)
	}
	serveName(t, reg, "queue", queue.NewHandler(sp, queue.Options{Node: "n1"}))
	a := &asyncSetup{reg: reg, release: make(chan *wire.Response, 1), ids: make(chan string, 10)}
	daemonSide := client.New(reg, client.Options{LocalNode: "n1"})
	t.Cleanup(func() { daemonSide.Close() })
	mux := wire.NewMux()
	mux.RouteFunc("work", func(ctx context.Context, req *wire.Request) *wire.Response {
		id, err := daemonSide.Enqueue(ctx, "slow", req)
		if err != nil {
			return wire.Fail(err)
		}
		a.ids <- id
		go func() {
			resp := <-a.release
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := daemonSide.Finish(ctx, id, resp); err != nil {
				t.Error(err)
			}
		}()
		return client.Accepted(id)
	})
	serveName(t, reg, "slow", mux)
	a.c = client.New(reg, client.Options{LocalNode: "n1"})
	t.Cleanup(func() { a.c.Close() })
	return a
}

func TestCallWaitsForAsyncResult(t *testing.T) {
	a := newAsync(t)
	a.release <- wire.OK(map[string]int{"keys": 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := a.c.Call(ctx, "slow", &wire.Request{Command: "work"})
	if err != nil {
		t.Fatal(err)
	}
	id := <-a.ids
	if resp.Code != wire.CodeOK || string(resp.Data) != `{"keys":3}` || resp.Meta.Transaction != id {
		t.Fatalf("async result: %+v", resp)
	}
	j, err := a.c.Job(ctx, id)
	if err != nil || j.Status != queue.JobDone || j.Daemon != "slow" {
		t.Fatalf("job: %+v %v", j, err)
	}
}

func TestCallAsyncAndWait(t *testing.T) {
	a := newAsync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := a.c.CallAsync(ctx, "slow", &wire.Request{Command: "work", Pass: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() == "" || p.ID() != <-a.ids {
		t.Fatalf("pending id %q", p.ID())
	}
	j, err := a.c.Job(ctx, p.ID())
	if err != nil || j.Status != queue.JobVirgin || string(j.Request) != `{"command":"work"}` {
		t.Fatalf("job before its result: %+v %v", j, err)
	}
	// Nothing yet: a short wait ends with its deadline.
	short, cancelShort := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	if _, err := p.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait before the result: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a 150ms wait took %v", d)
	}
	// A failure is a result like any other.
	a.release <- wire.Failf(wire.CodeCommandFailed, "disk full")
	resp, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != wire.CodeCommandFailed || resp.Message != "Command failed: disk full" {
		t.Fatalf("failed result: %+v", resp)
	}
	if j, _ := a.c.Job(ctx, p.ID()); j.Status != queue.JobFailed {
		t.Fatalf("status %q, want failed", j.Status)
	}
}

func TestWaitForUnknownJob(t *testing.T) {
	a := newAsync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.c.Wait(ctx, "nope@n1"); !client.IsNotExist(err) {
		t.Fatalf("wait for an unknown job: %v", err)
	}
	if _, err := a.c.Job(ctx, "nope@n1"); !client.IsNotExist(err) {
		t.Fatalf("job of an unknown id: %v", err)
	}
}

func TestSyncAnswerThroughCallAsync(t *testing.T) {
	reg, err := registry.Open(context.Background(), registry.TypeSQLite, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	serveName(t, reg, "fast", wire.HandlerFunc(func(ctx context.Context, req *wire.Request) *wire.Response {
		return wire.OK("now")
	}))
	c := client.New(reg, client.Options{LocalNode: "n1"})
	defer c.Close()
	p, err := c.CallAsync(context.Background(), "fast", &wire.Request{Command: "x"})
	if err != nil || p.ID() != "" {
		t.Fatalf("%v %q", err, p.ID())
	}
	resp, err := p.Wait(context.Background())
	if err != nil || string(resp.Data) != `"now"` {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestPendingID(t *testing.T) {
	for _, c := range []struct {
		resp *wire.Response
		id   string
	}{
		{client.Accepted("a@n1"), "a@n1"},
		{wire.Reply(wire.CodePending, "b@n1"), "b@n1"},
		{wire.Reply(wire.CodePending, nil), ""},
		{wire.Reply(wire.CodePending, map[string]int{"id": 3}), ""},
		{wire.OK(map[string]string{"id": "c@n1"}), ""},
		{nil, ""},
	} {
		id, ok := client.PendingID(c.resp)
		if id != c.id || ok != (c.id != "") {
			t.Errorf("PendingID(%+v) = %q %v, want %q", c.resp, id, ok, c.id)
		}
	}
}
