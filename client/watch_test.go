package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// watched is a registry the test can make announce changes: its Watch
// relays what the test sends (a name, or an error that ends the watch).
type watched struct {
	*flaky
	mu      sync.Mutex
	watches []chan any
	started chan struct{} // a watch started
	// during, if set, is called inside Resolve: a change that lands while
	// the registry is read.
	during func()
}

func newWatched(t *testing.T) *watched {
	return &watched{flaky: &flaky{Registry: newRegistry(t)}, started: make(chan struct{}, 8)}
}

func (w *watched) Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	eps, err := w.flaky.Resolve(ctx, name, o)
	if f := w.during; f != nil {
		w.during = nil
		f()
	}
	return eps, err
}

func (w *watched) Watch(ctx context.Context, ready func(), changed func(string)) error {
	ch := make(chan any)
	w.mu.Lock()
	w.watches = append(w.watches, ch)
	w.mu.Unlock()
	ready()
	w.started <- struct{}{}
	for {
		select {
		case v := <-ch:
			if err, ok := v.(error); ok {
				return err
			}
			changed(v.(string))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// send hands v to the current watch and waits until it has taken it.
func (w *watched) send(v any) {
	w.mu.Lock()
	ch := w.watches[len(w.watches)-1]
	w.mu.Unlock()
	ch <- v
}

// sync waits until the watch has handled everything sent before: the
// watch goroutine takes a value only after it handled the last.
func (w *watched) sync() { w.send("no such name") }

func TestWatchDropsCachedResolutions(t *testing.T) {
	reg := newWatched(t)
	a := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{})
	b := startServer(t, "127.0.0.1:0", whoHandler("b"), wire.ServerOptions{})
	register(t, reg, "n1", "kv", "json", a.addr)
	register(t, reg, "n1", "echo", "json", a.addr)
	c := New(reg, Options{LocalNode: "n1", CacheTTL: time.Second, MaxAge: 15 * time.Second})
	defer c.Close()
	clk := newClock(c)
	queries := func() int64 { return reg.resolves.Load() }

	who(t, c, "kv")
	<-reg.started
	who(t, c, "kv") // the watch came up after the first answer: read once more
	who(t, c, "echo")
	base := queries()
	// While the watch is up, an answer outlives CacheTTL...
	clk.Add(10 * time.Second)
	who(t, c, "kv")
	who(t, c, "echo")
	if n := queries() - base; n != 0 {
		t.Fatalf("%d registry queries within MaxAge with the watch up", n)
	}
	// ...until its name changes: then the next call reads it at once.
	register(t, reg, "n1", "kv", "json", b.addr)
	reg.send("kv")
	reg.sync()
	if got := who(t, c, "kv"); got != "b" {
		t.Fatalf("after a change of kv was announced, answered by %q", got)
	}
	who(t, c, "echo")
	if n := queries() - base; n != 1 {
		t.Fatalf("%d registry queries after a change of kv, want 1 (echo's answer stays)", n)
	}
	// AnyName drops every answer.
	reg.send(registry.AnyName)
	reg.sync()
	who(t, c, "kv")
	who(t, c, "echo")
	if n := queries() - base; n != 3 {
		t.Fatalf("%d registry queries after a change of any name, want 3", n)
	}
	// MaxAge bounds an answer even with the watch up: a dead node sends
	// no notification.
	clk.Add(16 * time.Second)
	who(t, c, "kv")
	if n := queries() - base; n != 4 {
		t.Fatalf("%d registry queries after MaxAge, want 4", n)
	}
	// A change announced while the registry is read: that answer is used
	// once, then read again.
	clk.Add(16 * time.Second)
	reg.during = func() { c.changed("kv") }
	who(t, c, "kv")
	who(t, c, "kv")
	if n := queries() - base; n != 6 {
		t.Fatalf("%d registry queries around a change during a read, want 6", n)
	}
	// The watch fails: back to CacheTTL until it is up again.
	reg.send(errors.New("connection reset"))
	waitFor(t, "the watch down", func() bool { return !c.watch.healthy.Load() })
	before := queries()
	clk.Add(2 * time.Second)
	who(t, c, "kv")
	if n := queries() - before; n != 1 {
		t.Fatalf("%d registry queries past CacheTTL with the watch down, want 1", n)
	}
	<-reg.started // it comes up again, and what was cached may have missed changes
	waitFor(t, "the watch up", c.watch.healthy.Load)
	who(t, c, "kv")
	if n := queries() - before; n != 2 {
		t.Fatalf("%d registry queries once the watch is back, want 2", n)
	}
}

// TestWatchStopsOnClose: Close ends the watch; a client without a cache,
// or told not to, never watches.
func TestWatchStopsOnClose(t *testing.T) {
	for _, o := range []Options{{CacheTTL: -1}, {NoWatch: true}, {}} {
		reg := newWatched(t)
		s := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{})
		register(t, reg, "n1", "kv", "json", s.addr)
		o.LocalNode = "n1"
		c := New(reg, o)
		who(t, c, "kv")
		c.Close()
		reg.mu.Lock()
		n := len(reg.watches)
		reg.mu.Unlock()
		want := 0
		if o.CacheTTL == 0 && !o.NoWatch {
			want = 1
		}
		if n != want {
			t.Fatalf("options %+v: %d watches, want %d", o, n, want)
		}
		if c.watch.done != nil {
			select {
			case <-c.watch.done:
			default:
				t.Fatal("the watch runs after Close")
			}
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
