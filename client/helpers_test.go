package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	_ "github.com/nsfd/nsfd/registry/sqlite" // the registry the tests open
	"github.com/nsfd/nsfd/wire"
)

// newRegistry opens an empty SQLite registry for tb.
func newRegistry(tb testing.TB) registry.Registry {
	tb.Helper()
	reg, err := registry.Open(context.Background(), registry.TypeSQLite, filepath.Join(tb.TempDir(), "registry.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { reg.Close() })
	return reg
}

// register registers daemon name of node with the given encoding and
// endpoints ("tcp ADDR" or "unix PATH" as addresses).
func register(tb testing.TB, reg registry.Registry, node, name, encoding string, addrs ...string) {
	tb.Helper()
	d := registry.Daemon{Node: node, Name: name, Encoding: encoding, MasterPID: 1}
	for _, a := range addrs {
		proto := registry.ProtoTCP
		if filepath.IsAbs(a) {
			proto = registry.ProtoUnix
		}
		d.Endpoints = append(d.Endpoints, registry.Endpoint{Proto: proto, Address: a})
	}
	if err := reg.Register(context.Background(), d); err != nil {
		tb.Fatal(err)
	}
}

// server is a wire server on loopback for a test.
type server struct {
	addr    string
	accepts atomic.Int64 // connections accepted
	calls   atomic.Int64 // requests answered
	stop    func()       // stops it, closing every connection
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startServer serves h on addr ("127.0.0.1:0" for any port) until the test
// ends or stop is called.
func startServer(tb testing.TB, addr string, h wire.Handler, opts wire.ServerOptions) *server {
	tb.Helper()
	network := "tcp"
	if filepath.IsAbs(addr) {
		network = "unix"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{addr: l.Addr().String()}
	counted := wire.HandlerFunc(func(ctx context.Context, req *wire.Request) *wire.Response {
		s.calls.Add(1)
		return h.Handle(ctx, req)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts.Logger = slog.New(slog.DiscardHandler)
	go func() {
		done <- (&wire.Server{Handler: counted, Options: opts}).Serve(ctx, countingListener{l, &s.accepts})
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Error(err)
			}
		})
	}
	tb.Cleanup(s.stop)
	return s
}

// whoHandler answers every request with the server's name.
func whoHandler(name string) wire.Handler {
	return wire.HandlerFunc(func(ctx context.Context, req *wire.Request) *wire.Response {
		return wire.OK(name)
	})
}

// who calls name and returns which server answered.
func who(tb testing.TB, c *Client, name string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, name, &wire.Request{Command: "who"})
	if err != nil {
		tb.Fatal(err)
	}
	var s string
	if err := resp.DecodeData(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// clock is a settable clock for a Client.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(c *Client) *clock {
	k := &clock{now: time.Now()}
	c.now = k.Now
	return k
}

func (k *clock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.now
}

func (k *clock) Add(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.now = k.now.Add(d)
}

// flaky is a registry whose Resolve fails while down is set, and answers
// registry.ErrStale while stale is set.
type flaky struct {
	registry.Registry
	down     atomic.Bool
	stale    atomic.Bool
	resolves atomic.Int64
}

var errUnreachable = errors.New("registry unreachable")

func (f *flaky) Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	f.resolves.Add(1)
	if f.down.Load() {
		return nil, errUnreachable
	}
	if f.stale.Load() {
		return nil, fmt.Errorf("resolve %s: %w", name, registry.ErrStale)
	}
	return f.Registry.Resolve(ctx, name, o)
}
