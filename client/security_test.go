package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testcert"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// registerTLS registers a daemon whose endpoints want TLS, verified
// against serverName.
func registerTLS(tb testing.TB, reg registry.Registry, node, name, serverName string, addrs ...string) {
	tb.Helper()
	d := registry.Daemon{Node: node, Name: name, Encoding: "json", MasterPID: 1}
	for _, a := range addrs {
		d.Endpoints = append(d.Endpoints, registry.Endpoint{Proto: registry.ProtoTCP, Address: a, TLS: true, ServerName: serverName})
	}
	if err := reg.Register(context.Background(), d); err != nil {
		tb.Fatal(err)
	}
}

func TestCallOverTLS(t *testing.T) {
	ca := testcert.NewCA(t, "nsfd test CA")
	serverCfg := &tls.Config{Certificates: []tls.Certificate{ca.Pair(t, "kv", "kv.test", "127.0.0.1")}}
	s := startServer(t, "127.0.0.1:0", whoHandler("tls"), wire.ServerOptions{TLS: serverCfg})
	reg := newRegistry(t)

	call := func(o Options) error {
		t.Helper()
		o.LocalNode = "n1"
		c := New(reg, o)
		defer c.Close()
		ctx, cancel := context.WithTimeout(bg, 5*time.Second)
		defer cancel()
		resp, err := c.Call(ctx, "kv", &wire.Request{Command: "who"})
		if err == nil {
			err = resp.Err()
		}
		return err
	}
	// Verified against the name the registry has, or the address's IP.
	registerTLS(t, reg, "n1", "kv", "kv.test", s.addr)
	if err := call(Options{TLS: &tls.Config{RootCAs: ca.Pool()}}); err != nil {
		t.Fatalf("TLS call: %v", err)
	}
	registerTLS(t, reg, "n1", "kv", "", s.addr)
	if err := call(Options{TLS: &tls.Config{RootCAs: ca.Pool()}}); err != nil {
		t.Fatalf("TLS call verified by IP: %v", err)
	}
	// A certificate the client cannot verify: refused.
	other := testcert.NewCA(t, "another CA")
	if err := call(Options{TLS: &tls.Config{RootCAs: other.Pool()}}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("call with the wrong CA: %v", err)
	}
	// A name the certificate does not hold: refused.
	if err := call(Options{TLS: &tls.Config{RootCAs: ca.Pool()}, ServerName: "evil.test"}); err == nil || !strings.Contains(err.Error(), "evil.test") {
		t.Fatalf("call verified against another name: %v", err)
	}
	// A plain endpoint is skipped when TLS is required.
	plain := startServer(t, "127.0.0.1:0", whoHandler("plain"), wire.ServerOptions{})
	register(t, reg, "n1", "kv", "json", plain.addr)
	if err := call(Options{RequireTLS: true}); err == nil || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("RequireTLS with a plain endpoint: %v", err)
	}
	if plain.calls.Load() != 0 {
		t.Fatal("a request went to the plain endpoint")
	}
}

func TestCredentialIsSent(t *testing.T) {
	var got atomic.Pointer[wire.Request]
	s := startServer(t, "127.0.0.1:0", wire.HandlerFunc(func(ctx context.Context, req *wire.Request) *wire.Response {
		got.Store(req)
		return wire.OK(nil)
	}), wire.ServerOptions{})
	reg := newRegistry(t)
	register(t, reg, "n1", "kv", "json", s.addr)
	c := New(reg, Options{LocalNode: "n1", Credential: "ann:s3cret"})
	defer c.Close()
	req := &wire.Request{Command: "get"}
	if _, err := c.Call(bg, "kv", req); err != nil {
		t.Fatal(err)
	}
	if r := got.Load(); r.User != "ann" || r.Pass != "s3cret" {
		t.Fatalf("the daemon got user %q pass %q", r.User, r.Pass)
	}
	if req.User != "" || req.Pass != "" {
		t.Fatal("the caller's request was changed")
	}
	// A request with its own user keeps it.
	if _, err := c.Call(bg, "kv", &wire.Request{Command: "get", User: "bob", Pass: "x"}); err != nil {
		t.Fatal(err)
	}
	if r := got.Load(); r.User != "bob" || r.Pass != "x" {
		t.Fatalf("the daemon got user %q pass %q", r.User, r.Pass)
	}
}

func TestReadCredential(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if cred, err := ReadCredential(write("ok", "ann:tok3n\n", 0o600)); err != nil || cred != "ann:tok3n" {
		t.Fatalf("ok: %q %v", cred, err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"world":  {"ann:tok3n\n", 0o644, "readable by every user"},
		"nouser": {":tok3n\n", 0o600, "USER:TOKEN"},
		"bare":   {"tok3n\n", 0o600, "USER:TOKEN"},
		"two":    {"ann:tok3n\nbob:other\n", 0o600, "more than one line"},
	} {
		_, err := ReadCredential(write(name, c.content, c.mode))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok3n") {
			t.Errorf("%s: the error shows the token: %v", name, err)
		}
	}
}

// timingOut is a connection whose reads fail as a cut-off peer's do once
// TCP_USER_TIMEOUT passed, when cut is set.
type timingOut struct {
	net.Conn
	cut *atomic.Bool
}

func (c timingOut) Read(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}
	}
	return c.Conn.Read(p)
}

// TestCutOffPeerIsSkipped: a call that fails because the peer stopped
// acknowledging (AckTimeout) marks its endpoint down and drops its idle
// connections; the next calls go elsewhere at once.
func TestCutOffPeerIsSkipped(t *testing.T) {
	a := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{})
	b := startServer(t, "127.0.0.1:0", whoHandler("b"), wire.ServerOptions{})
	reg := newRegistry(t)
	register(t, reg, "n1", "kv", "json", a.addr)
	register(t, reg, "n2", "kv", "json", b.addr)
	var cut atomic.Bool
	var dials atomic.Int64
	c := New(reg, Options{LocalNode: "n1", NoWatch: true, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil || addr != a.addr {
			return nc, err
		}
		return timingOut{nc, &cut}, nil
	}})
	defer c.Close()
	for range 3 {
		if got := who(t, c, "kv"); got != "a" {
			t.Fatalf("local node up: answered by %q", got)
		}
	}
	cut.Store(true)
	_, err := c.Call(bg, "kv", &wire.Request{Command: "who"})
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("call to the cut-off node: %v, want ETIMEDOUT", err)
	}
	before := dials.Load()
	for range 5 {
		if got := who(t, c, "kv"); got != "b" {
			t.Fatalf("after the cut: answered by %q", got)
		}
	}
	if n := dials.Load() - before; n != 1 {
		t.Fatalf("%d dials after the cut, want 1 (to b)", n)
	}
	p := c.pools[poolKey{network: "tcp", address: a.addr, codec: "json"}]
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle connections kept to the cut-off node", idle)
	}
}
