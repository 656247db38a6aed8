package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

var bg = context.Background()

func TestCallReusesConnection(t *testing.T) {
	reg := newRegistry(t)
	s := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{})
	register(t, reg, "n1", "kv", "json", s.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	for range 20 {
		if got := who(t, c, "kv"); got != "a" {
			t.Fatalf("answered by %q", got)
		}
	}
	if n := s.accepts.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential calls, want 1", n)
	}
	// Concurrent calls use more connections, and keep them for later.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				who(t, c, "kv")
			}
		})
	}
	wg.Wait()
	if n := s.accepts.Load(); n > 9 {
		t.Fatalf("%d connections for 8 concurrent callers", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(bg, "kv", &wire.Request{Command: "who"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after close: %v", err)
	}
}

func TestCallUnixSocketAndEncoding(t *testing.T) {
	reg := newRegistry(t)
	sock := filepath.Join(t.TempDir(), "kv.sock")
	s := startServer(t, sock, whoHandler("gz"), wire.ServerOptions{Codec: wire.CodecJSONGzip})
	register(t, reg, "n1", "kv", wire.CodecJSONGzip, s.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	if got := who(t, c, "kv"); got != "gz" {
		t.Fatalf("answered by %q", got)
	}
	// An encoding this client does not know leaves no usable endpoint.
	register(t, reg, "n1", "odd", "msgpack", s.addr)
	if _, err := c.Call(bg, "odd", &wire.Request{Command: "who"}); err == nil || !strings.Contains(err.Error(), "no endpoint a client can use") {
		t.Fatalf("call of a daemon speaking msgpack: %v", err)
	}
}

func TestUnknownName(t *testing.T) {
	c := New(newRegistry(t), Options{})
	defer c.Close()
	_, err := c.Call(bg, "nope", &wire.Request{Command: "x"})
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("call of an unknown name: %v", err)
	}
	if _, err := c.Dial(bg, "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("dial of an unknown name: %v", err)
	}
}

func TestFailOverAndBack(t *testing.T) {
	reg := newRegistry(t)
	// a on a UNIX socket of the test's own: once a stops, a TCP port of
	// its could be bound at once by another test process, whose server
	// would answer in its place.
	a := startServer(t, filepath.Join(t.TempDir(), "a.sock"), whoHandler("a"), wire.ServerOptions{})
	b := startServer(t, "127.0.0.1:0", whoHandler("b"), wire.ServerOptions{})
	register(t, reg, "n1", "kv", "json", a.addr)
	register(t, reg, "n2", "kv", "json", b.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	clk := newClock(c)

	// The local node's endpoint, every time.
	for range 5 {
		if got := who(t, c, "kv"); got != "a" {
			t.Fatalf("answered by %q, want the local a", got)
		}
	}
	// a dies: its pooled connection is found closed, its dial refused, and
	// the call goes to b at once.
	a.stop()
	if got := who(t, c, "kv"); got != "b" {
		t.Fatalf("after a died, answered by %q", got)
	}
	// a is marked down: the next calls do not dial it again.
	for range 5 {
		if got := who(t, c, "kv"); got != "b" {
			t.Fatalf("answered by %q", got)
		}
	}
	if !c.poolOf(t, a.addr).isDown(clk.Now()) {
		t.Fatal("a not marked down")
	}
	// a comes back on the same address; once DownFor has passed it is
	// tried again, and preferred.
	a2 := startServer(t, a.addr, whoHandler("a2"), wire.ServerOptions{})
	if got := who(t, c, "kv"); got != "b" {
		t.Fatalf("a retried before DownFor passed: answered by %q", got)
	}
	clk.Add(DefaultDownFor + time.Millisecond)
	if got := who(t, c, "kv"); got != "a2" {
		t.Fatalf("after DownFor, answered by %q, want a2", got)
	}
	if a2.accepts.Load() != 1 {
		t.Fatalf("a2 accepted %d connections", a2.accepts.Load())
	}
}

func TestEveryEndpointDownIsStillTried(t *testing.T) {
	reg := newRegistry(t)
	// A UNIX socket (see TestFailOverAndBack): a freed TCP port can be
	// taken by another test process, which reset this test's call (CI).
	a := startServer(t, filepath.Join(t.TempDir(), "a.sock"), whoHandler("a"), wire.ServerOptions{})
	register(t, reg, "n1", "kv", "json", a.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	a.stop()
	if _, err := c.Call(bg, "kv", &wire.Request{Command: "who"}); err == nil || !strings.Contains(err.Error(), "no endpoint answered") {
		t.Fatalf("call with the only endpoint dead: %v", err)
	}
	// Down, but the only one: it is dialled again rather than given up on.
	startServer(t, a.addr, whoHandler("a2"), wire.ServerOptions{})
	if got := who(t, c, "kv"); got != "a2" {
		t.Fatalf("answered by %q", got)
	}
}

func TestRoundRobin(t *testing.T) {
	reg := newRegistry(t)
	var addrs []string
	for i := range 3 {
		s := startServer(t, "127.0.0.1:0", whoHandler(fmt.Sprint(i)), wire.ServerOptions{})
		addrs = append(addrs, s.addr)
	}
	register(t, reg, "n1", "kv", "json", addrs...)
	// Another node's endpoint is used only when the local ones fail.
	other := startServer(t, "127.0.0.1:0", whoHandler("other"), wire.ServerOptions{})
	register(t, reg, "n2", "kv", "json", other.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	seen := map[string]int{}
	for range 30 {
		seen[who(t, c, "kv")]++
	}
	if seen["0"] != 10 || seen["1"] != 10 || seen["2"] != 10 {
		t.Fatalf("calls per endpoint: %v, want 10 each on the local node", seen)
	}
	// Without a local node, the other nodes share the calls. (No watch:
	// once up, it makes the client read the registry again, which starts
	// its rotation of the nodes elsewhere, and the count would be off by
	// one.)
	c2 := New(reg, Options{LocalNode: "elsewhere", NoWatch: true})
	defer c2.Close()
	seen = map[string]int{}
	for range 40 {
		seen[who(t, c2, "kv")]++
	}
	if len(seen) != 4 || seen["other"] != 10 {
		t.Fatalf("calls per endpoint from elsewhere: %v, want 10 each", seen)
	}
}

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

func TestDeadline(t *testing.T) {
	reg := newRegistry(t)
	release := make(chan struct{})
	defer close(release)
	slow := wire.HandlerFunc(func(ctx context.Context, req *wire.Request) *wire.Response {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return wire.OK(nil)
	})
	s := startServer(t, "127.0.0.1:0", slow, wire.ServerOptions{})
	register(t, reg, "n1", "slow", "json", s.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()

	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Call(ctx, "slow", &wire.Request{Command: "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a 100ms deadline honoured after %v", d)
	}
	// A cancelled context, before anything is sent.
	cctx, cancelNow := context.WithCancel(bg)
	cancelNow()
	if _, err := c.Call(cctx, "slow", &wire.Request{Command: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled context: %v", err)
	}
	// A dial that cannot complete (an address nothing answers; where the
	// network is unreachable it fails at once) ends with the deadline.
	register(t, reg, "n1", "void", "json", "10.255.255.1:9")
	dctx, cancelD := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancelD()
	start = time.Now()
	if _, err := c.Call(dctx, "void", &wire.Request{Command: "x"}); err == nil {
		t.Fatal("call of a blackhole: no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("dial honoured its 100ms deadline after %v", d)
	}
}

// TestServerClosedIdleConnection: a pooled connection the server closed is
// not used, and one it closes as the request is sent is retried once on a
// new connection.
func TestServerClosedIdleConnection(t *testing.T) {
	reg := newRegistry(t)
	s := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{IdleTimeout: 50 * time.Millisecond})
	register(t, reg, "n1", "kv", "json", s.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	who(t, c, "kv")
	// The server closes the idle connection; the peek sees it.
	p := c.poolOf(t, s.addr)
	waitUntil(t, "the server to close the idle connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.idle) == 1 && !p.idle[0].alive()
	})
	who(t, c, "kv")
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}

	// A server that reads the second request of each connection and
	// closes it unanswered: the race of a server closing an idle
	// connection as a request arrives.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	requests := 0
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				codec, _ := wire.Lookup("")
				for i := 0; ; i++ {
					if _, err := wire.ReadFrame(br, nil, 0); err != nil {
						return
					}
					mu.Lock()
					requests++
					mu.Unlock()
					if i == 1 {
						return // the second request: closed unanswered
					}
					out, _ := wire.AppendFrame(nil, codec, wire.OK("r"), 0)
					nc.Write(out)
				}
			}()
		}
	}()
	register(t, reg, "n1", "racy", "json", l.Addr().String())
	for i := range 3 {
		resp, err := c.Call(bg, "racy", &wire.Request{Command: "x"})
		if err != nil || resp.Code != wire.CodeOK {
			t.Fatalf("call %d: %v %v", i, resp, err)
		}
	}
	// Calls: 1 on conn A; 2 on A (closed) then again on B; 3 on B (closed)
	// then on C.
	mu.Lock()
	defer mu.Unlock()
	if requests != 5 {
		t.Fatalf("server saw %d requests, want 5", requests)
	}
}

// TestNoRetryOnFreshConnection: a new connection that fails is not retried:
// the request may have been served.
func TestNoRetryOnFreshConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	requests := 0
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				if _, err := wire.ReadFrame(bufio.NewReader(nc), nil, 0); err == nil {
					mu.Lock()
					requests++
					mu.Unlock()
				}
			}()
		}
	}()
	reg := newRegistry(t)
	register(t, reg, "n1", "dies", "json", l.Addr().String())
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	if _, err := c.Call(bg, "dies", &wire.Request{Command: "x"}); err == nil {
		t.Fatal("no error from a server that closes unanswered")
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Fatalf("request sent %d times, want once", requests)
	}
}

func TestDialFailsOver(t *testing.T) {
	reg := newRegistry(t)
	s := startServer(t, "127.0.0.1:0", whoHandler("b"), wire.ServerOptions{})
	// The dead endpoint is a stale UNIX socket of the test's own (see
	// TestFailOverAndBack): its dial is refused, as a freed TCP port's is
	// until another test process binds it and answers.
	deadAddr := filepath.Join(t.TempDir(), "dead.sock")
	dead, err := net.Listen("unix", deadAddr)
	if err != nil {
		t.Fatal(err)
	}
	dead.(*net.UnixListener).SetUnlinkOnClose(false)
	dead.Close()
	register(t, reg, "n1", "kv", "json", deadAddr)
	register(t, reg, "n2", "kv", "json", s.addr)
	c := New(reg, Options{LocalNode: "n1"})
	defer c.Close()
	conn, err := c.Dial(bg, "kv")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := conn.Call(bg, &wire.Request{Command: "who"})
	if err != nil || string(resp.Data) != `"b"` {
		t.Fatalf("dialled connection: %v %v", resp, err)
	}
}

// poolOf returns the pool of the endpoint at addr.
func (c *Client) poolOf(tb testing.TB, addr string) *pool {
	tb.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, p := range c.pools {
		if k.address == addr {
			return p
		}
	}
	tb.Fatalf("no pool for %s", addr)
	return nil
}

func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
