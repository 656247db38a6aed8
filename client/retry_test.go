package client

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/wire"
)

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
