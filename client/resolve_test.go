package client

import (
	"errors"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

func TestResolveCache(t *testing.T) {
	reg := &flaky{Registry: newRegistry(t)}
	a := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{})
	b := startServer(t, "127.0.0.1:0", whoHandler("b"), wire.ServerOptions{})
	register(t, reg, "n1", "kv", "json", a.addr)
	c := New(reg, Options{LocalNode: "n1", CacheTTL: time.Second})
	defer c.Close()
	clk := newClock(c)

	who(t, c, "kv")
	who(t, c, "kv")
	if n := reg.resolves.Load(); n != 1 {
		t.Fatalf("%d registry queries for two calls within the TTL", n)
	}
	// The daemon moves; the cache says where it was until it expires.
	register(t, reg, "n1", "kv", "json", b.addr)
	if got := who(t, c, "kv"); got != "a" {
		t.Fatalf("within the TTL, answered by %q", got)
	}
	clk.Add(time.Second)
	if got := who(t, c, "kv"); got != "b" {
		t.Fatalf("after the TTL, answered by %q", got)
	}
	eps, err := c.Resolve(bg, "kv")
	if err != nil || len(eps) != 1 || eps[0].Address != b.addr {
		t.Fatalf("resolve: %v %v", eps, err)
	}
	// The registry is unreachable: the last answer serves, and the
	// registry is asked again once per TTL, not per call.
	reg.down.Store(true)
	clk.Add(time.Second)
	before := reg.resolves.Load()
	for range 5 {
		if got := who(t, c, "kv"); got != "b" {
			t.Fatalf("registry down: answered by %q", got)
		}
	}
	if n := reg.resolves.Load() - before; n != 1 {
		t.Fatalf("%d registry queries in one TTL while it is down", n)
	}
	// A name never resolved has nothing to fall back on.
	if _, err := c.Call(bg, "other", &wire.Request{Command: "x"}); !errors.Is(err, errUnreachable) {
		t.Fatalf("call of an unresolved name with the registry down: %v", err)
	}
	// The daemon is gone for good: that answer is not overridden by the cache.
	reg.down.Store(false)
	if err := reg.Unregister(bg, "n1", "kv"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if _, err := c.Call(bg, "kv", &wire.Request{Command: "x"}); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("call after unregister: %v", err)
	}
}

// TestResolveAfterRegistryOutage: a registry that comes back from an
// outage answers that every endpoint is stale until the masters have
// written their heartbeats again; the client keeps its last resolution for
// MaxAge after the registry first answered again, and believes a stale
// answer after that.
func TestResolveAfterRegistryOutage(t *testing.T) {
	reg := &flaky{Registry: newRegistry(t)}
	a := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{})
	register(t, reg, "n1", "kv", "json", a.addr)
	const maxAge = 3 * time.Second
	c := New(reg, Options{LocalNode: "n1", CacheTTL: time.Second, MaxAge: maxAge, NoWatch: true})
	defer c.Close()
	clk := newClock(c)
	who(t, c, "kv")

	// Stale without an outage seen: the daemon is believed dead.
	reg.stale.Store(true)
	clk.Add(time.Second)
	if _, err := c.Call(bg, "kv", &wire.Request{Command: "x"}); !errors.Is(err, registry.ErrStale) {
		t.Fatalf("stale answer with no outage seen: %v", err)
	}
	reg.stale.Store(false)
	clk.Add(time.Second)
	who(t, c, "kv")

	// The registry goes down, then comes back with every heartbeat stale.
	reg.down.Store(true)
	clk.Add(time.Second)
	if got := who(t, c, "kv"); got != "a" {
		t.Fatalf("registry down: answered by %q", got)
	}
	// It stays down a while: the masters' retries may come after the
	// client's first answer, and MaxAge counts from that answer.
	for range 5 {
		clk.Add(time.Second)
		who(t, c, "kv")
	}
	reg.down.Store(false)
	reg.stale.Store(true)
	for range 3 {
		clk.Add(time.Second)
		if got := who(t, c, "kv"); got != "a" {
			t.Fatalf("registry back, heartbeats stale: answered by %q", got)
		}
	}
	// MaxAge after it answered again, a stale answer is believed again.
	clk.Add(time.Second)
	if _, err := c.Call(bg, "kv", &wire.Request{Command: "x"}); !errors.Is(err, registry.ErrStale) {
		t.Fatalf("stale answer %v after the outage: %v", maxAge, err)
	}
}
