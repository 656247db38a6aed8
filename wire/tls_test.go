package wire

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/nsfd/nsfd/internal/testcert"
	"github.com/nsfd/nsfd/worker"
)

// TestServeTLS: with ServerOptions.TLS a server speaks TLS only: a TLS
// client is served, a plain one is not (its request is never handled), and
// with ClientAuth one without a certificate of the right CA is refused.
func TestServeTLS(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	cfg := &tls.Config{
		Certificates: []tls.Certificate{ca.Pair(t, "srv", "127.0.0.1")},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	handled := 0
	s := startServer(t, HandlerFunc(func(ctx context.Context, req *Request) *Response {
		handled++
		return OK(nil)
	}), ServerOptions{TLS: cfg})

	call := func(cc *tls.Config) error {
		t.Helper()
		nc := dialRaw(t, s.addr)
		tc := tls.Client(nc, cc)
		c := NewConn(tc, nil, 0)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_, err := c.Call(ctx, &Request{Command: "x"})
		return err
	}
	mine := ca.Pair(t, "client")
	if err := call(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{mine}}); err != nil {
		t.Fatalf("TLS client with a good certificate: %v", err)
	}
	other := testcert.NewCA(t, "other CA")
	if err := call(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{other.Pair(t, "client")}}); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
	if err := call(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	c := dialConn(t, s.addr, CodecJSON)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := c.Call(ctx, &Request{Command: "x"}); err == nil {
		t.Fatal("a plain-text client was answered")
	}
	if handled != 1 {
		t.Fatalf("handled %d requests, want 1", handled)
	}
}

// TestEnvAuthDefault: a server given no Authenticator checks the tokens
// file its master names in NSFD_TOKENS, and refuses everything if it does
// not load.
func TestEnvAuthDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, "ann:"+hashAt(t, "tok")+"\n")
	t.Setenv(worker.EnvTokens, path)
	s := startServer(t, HandlerFunc(func(ctx context.Context, req *Request) *Response { return OK(nil) }), ServerOptions{})
	c := dialConn(t, s.addr, CodecJSON)
	if r := mustCall(t, c, &Request{Command: "x", User: "ann", Pass: "tok"}); r.Code != CodeOK {
		t.Fatalf("good token: %d", r.Code)
	}
	if r := mustCall(t, c, &Request{Command: "x"}); r.Code != CodeInvalidAuthInfo {
		t.Fatalf("no token: %d", r.Code)
	}
	t.Setenv(worker.EnvTokens, filepath.Join(t.TempDir(), "missing"))
	c = dialConn(t, s.addr, CodecJSON)
	if r := mustCall(t, c, &Request{Command: "x", User: "ann", Pass: "tok"}); r.Code != CodeAuthentication {
		t.Fatalf("tokens file missing: %d", r.Code)
	}
	if !s.log.waitFor("tokens do not load") {
		t.Fatal("the failure to load was not logged")
	}
}
