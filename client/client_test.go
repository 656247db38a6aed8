package client

import (
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
