package worker

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testcert"
)

// TestServeTLSFromEnv: a worker whose master names a certificate serves
// TLS on its stream listeners whatever its code says; a plain client never
// reaches the handler; with a client CA, a client without a certificate of
// it is refused.
func TestServeTLSFromEnv(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	cert, key := ca.WriteFiles(t, dir, "srv", "127.0.0.1")
	t.Setenv(EnvTLSCert, cert)
	t.Setenv(EnvTLSKey, key)
	t.Setenv(EnvTLSClientCA, ca.WriteCA(t, dir, "ca"))
	l := wtTCPListener(t)
	handled := make(chan string, 8)
	h := HandlerFunc(func(ctx context.Context, c net.Conn) {
		_, isTLS := c.(*tls.Conn)
		line, _ := bufio.NewReader(c).ReadString('\n')
		handled <- line
		if isTLS {
			io.WriteString(c, "tls "+line)
		}
	})
	_, stop := wtServe(t, &Server{Handler: h, Listeners: []net.Listener{l}, Logger: slog.New(slog.DiscardHandler)})
	defer stop()

	dial := func(cc *tls.Config) (string, error) {
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), cc)
		if err != nil {
			return "", err
		}
		defer tc.Close()
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(tc, "hello\n")
		return bufio.NewReader(tc).ReadString('\n')
	}
	good := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{ca.Pair(t, "client")}}
	if got, err := dial(good); err != nil || got != "tls hello\n" {
		t.Fatalf("TLS client: %q, %v", got, err)
	}
	if got, err := dial(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}); err == nil {
		t.Fatalf("a client without a certificate was answered: %q", got)
	}
	c := wtDial(t, "tcp", l.Addr().String())
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "plain\n")
	if b, err := io.ReadAll(c); err == nil && strings.Contains(string(b), "plain") {
		t.Fatalf("a plain client was answered: %q", b)
	}
	if got := <-handled; got != "hello\n" {
		t.Fatalf("handled %q", got)
	}
	select {
	case got := <-handled:
		t.Fatalf("the handler got a connection that failed its handshake: %q", got)
	default:
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	cert, key := ca.WriteFiles(t, dir, "srv", "127.0.0.1")
	for _, c := range []struct {
		name, cert, key, ca, want string
	}{
		{"cert only", cert, "", "", "must both be set"},
		{"missing key", cert, dir + "/none.key", "", "none.key"},
		{"key for another cert", cert, writeOtherKey(t, ca, dir), "", "private key does not match"},
		{"CA not PEM", cert, key, cert + ".nope", "no such file"},
	} {
		t.Setenv(EnvTLSCert, c.cert)
		t.Setenv(EnvTLSKey, c.key)
		t.Setenv(EnvTLSClientCA, c.ca)
		if _, err := TLSConfig(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	t.Setenv(EnvTLSCert, "")
	t.Setenv(EnvTLSKey, "")
	t.Setenv(EnvTLSClientCA, "")
	if cfg, err := TLSConfig(); cfg != nil || err != nil {
		t.Fatalf("no TLS asked: %v, %v", cfg, err)
	}
}

func writeOtherKey(t *testing.T, ca *testcert.CA, dir string) string {
	_, key := ca.Issue(t, "other")
	p := dir + "/other.key"
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCertificateReloads: a renewed certificate is served without a
// restart.
func TestCertificateReloads(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	cert, key := ca.WriteFiles(t, dir, "srv", "one.test")
	r := &certReloader{certFile: cert, keyFile: key}
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	name := func() string {
		c, err := r.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.DNSNames[0]
	}
	if got := name(); got != "one.test" {
		t.Fatalf("serves %q", got)
	}
	c2, k2 := ca.Issue(t, "srv", "two.test")
	os.WriteFile(key, k2, 0o600)
	os.WriteFile(cert, c2, 0o644)
	future := time.Now().Add(time.Hour)
	os.Chtimes(cert, future, future)
	r.mu.Lock()
	r.checked = time.Time{}
	r.mu.Unlock()
	if got := name(); got != "two.test" {
		t.Fatalf("after the renewal, serves %q", got)
	}
}
