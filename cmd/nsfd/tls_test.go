//go:build linux

package main

// End-to-end tests of secured calls: a framework daemon (kv) with
// tls_cert, tls_key, tls_client_ca and tokens under a real master, called
// with `nsfd call` and by hand.

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testcert"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// nsfdWith runs one CLI command with more environment variables.
func (e *env) nsfdWith(extraEnv []string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), append([]string{"--etc", e.etc}, args...)...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return o.String(), er.String(), code
}

// newToken makes a token for user with `nsfd token`: the credential file
// it writes, and the tokens-file line it prints.
func newToken(t *testing.T, e *env, dir, user string, extra ...string) (credFile, line string) {
	t.Helper()
	credFile = filepath.Join(dir, user+".cred")
	out, errOut, code := e.nsfd(append([]string{"token", user, "--out", credFile}, extra...)...)
	if code != 0 {
		t.Fatalf("nsfd token %s: %d %q", user, code, errOut)
	}
	if fi, err := os.Stat(credFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v", fi, err)
	}
	return credFile, strings.TrimSpace(out)
}

func TestSecuredCalls(t *testing.T) {
	e := newEnv(t)
	e.setRegistry("[registry]\nheartbeat = 200ms\n")
	dir := t.TempDir()
	ca := testcert.NewCA(t, "daemons' CA")
	caFile := ca.WriteCA(t, dir, "ca")
	cert, key := ca.WriteFiles(t, dir, "kv", "kv.test")
	clientCA := testcert.NewCA(t, "clients' CA")
	clientCAFile := clientCA.WriteCA(t, dir, "client-ca")
	clientCert, clientKey := clientCA.WriteFiles(t, dir, "client")
	other := testcert.NewCA(t, "another CA")
	otherCAFile := other.WriteCA(t, dir, "other-ca")
	otherCert, otherKey := other.WriteFiles(t, dir, "stranger")

	annCred, annLine := newToken(t, e, dir, "ann")
	readerCred, readerLine := newToken(t, e, dir, "reader", "--commands", "get,info")
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# who may call kv\n"+annLine+"\n"+readerLine+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	e.write("kv.ini", kvConf(filepath.Join(e.dir, "var", "kv"),
		"tls_cert = "+cert+"\ntls_key = "+key+"\ntls_client_ca = "+clientCAFile+"\ntokens = "+tokens+"\n", ""))
	m := e.start()
	addr := m.addr("kv")

	tlsArgs := []string{"--ca", caFile, "--cert", clientCert, "--key", clientKey}
	call := func(extra []string, args ...string) (string, string, int) {
		t.Helper()
		return e.nsfd(append(append([]string{"call"}, args...), extra...)...)
	}
	waitFor(t, "kv callable over TLS", 20*time.Second, func() bool {
		_, _, code := call(append(tlsArgs, "--token-file", annCred), "kv", "info")
		return code == 0
	})
	// The registry says the endpoint wants TLS, verified as kv.test.
	for _, d := range e.rows(registry.TypeSQLite, e.sqlite()) {
		if d.Name == "kv" && (len(d.Endpoints) != 1 || !d.Endpoints[0].TLS || d.Endpoints[0].ServerName != "kv.test") {
			t.Fatalf("registry row %+v", d.Endpoints)
		}
	}

	ann := append(append([]string{}, tlsArgs...), "--token-file", annCred)
	if out, errOut, code := call(ann, "kv", "put", `{"key":"a","value":"1"}`); code != 0 {
		t.Fatalf("put with TLS and a token: %d %q %q", code, out, errOut)
	}
	if out, _, code := call(ann, "kv", "get", `{"key":"a"}`); code != 0 || out != "1\n" {
		t.Fatalf("get: %d %q", code, out)
	}
	// The credential from the environment, never the command line.
	cred, _ := os.ReadFile(annCred)
	if out, errOut, code := e.nsfdWith([]string{"NSFD_TOKEN=" + strings.TrimSpace(string(cred)), "NSFD_CA=" + caFile,
		"NSFD_CLIENT_CERT=" + clientCert, "NSFD_CLIENT_KEY=" + clientKey}, "call", "kv", "get", `{"key":"a"}`); code != 0 || out != "1\n" {
		t.Fatalf("get with the environment's credential: %d %q %q", code, out, errOut)
	}

	// Tokens: a wrong one, none, and a command the user may not run.
	wrong := filepath.Join(dir, "wrong.cred")
	os.WriteFile(wrong, []byte("ann:not-the-token\n"), 0o600)
	for _, c := range []struct {
		extra []string
		args  []string
		want  string
	}{
		{append(append([]string{}, tlsArgs...), "--token-file", wrong), []string{"kv", "get", `{"key":"a"}`}, "2200 Authentication error"},
		{tlsArgs, []string{"kv", "get", `{"key":"a"}`}, "2202 Invalid authorization information"},
		{append(append([]string{}, tlsArgs...), "--token-file", readerCred), []string{"kv", "put", `{"key":"b","value":2}`}, "2201 Authorization error"},
	} {
		if out, errOut, code := call(c.extra, c.args...); code != 1 || !strings.HasPrefix(errOut, "nsfd: "+c.want) {
			t.Errorf("call %v: %d %q %q, want %q", c.args, code, out, errOut, c.want)
		}
	}
	if out, errOut, code := call(append(append([]string{}, tlsArgs...), "--token-file", readerCred), "kv", "get", `{"key":"a"}`); code != 0 || out != "1\n" {
		t.Fatalf("reader's get: %d %q %q", code, out, errOut)
	}

	// TLS: the daemon's certificate from another CA, a client certificate
	// from another CA, none at all.
	for _, c := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"daemon's certificate unverified", []string{"--ca", otherCAFile, "--cert", clientCert, "--key", clientKey, "--token-file", annCred}, "certificate signed by unknown authority"},
		{"client certificate of another CA", []string{"--ca", caFile, "--cert", otherCert, "--key", otherKey, "--token-file", annCred}, "certificate"},
		{"no client certificate", []string{"--ca", caFile, "--token-file", annCred}, "certificate"},
		{"another name", []string{"--ca", caFile, "--cert", clientCert, "--key", clientKey, "--token-file", annCred, "--server-name", "evil.test"}, "evil.test"},
	} {
		out, errOut, code := call(c.extra, "kv", "get", `{"key":"a"}`)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: %d %q %q, want %q", c.name, code, out, errOut, c.want)
		}
		t.Logf("%s: %s", c.name, strings.TrimSpace(errOut))
	}

	// A plain-text client gets no answer: the connection ends in the
	// handshake.
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := wire.NewConn(nc, nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if resp, err := c.Call(ctx, &wire.Request{Command: "get", User: "ann", Pass: "x"}); err == nil {
		t.Fatalf("a plain-text client was answered: %+v", resp)
	} else if ctx.Err() != nil {
		t.Fatalf("a plain-text client was neither answered nor disconnected: %v", err)
	}

	// No token reaches the central log, whatever happened above.
	m.stop()
	log := e.log()
	for _, f := range []string{annCred, readerCred} {
		b, _ := os.ReadFile(f)
		_, tok, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
		if strings.Contains(log, tok) {
			t.Fatalf("a token is in the central log")
		}
	}
	if !strings.Contains(log, "kv[") {
		t.Fatal("the central log holds nothing of kv's workers: is it the right file?")
	}
}

// TestTokenNeverOnTheCommandLine: `nsfd call` has no flag for a token, and
// refuses --user beside a credential that names the user.
func TestTokenNeverOnTheCommandLine(t *testing.T) {
	e := newEnv(t)
	if _, errOut, code := e.nsfd("call", "kv", "get", "--token", "ann:x"); code != 2 || !strings.Contains(errOut, "flag provided but not defined: -token") {
		t.Fatalf("--token: %d %q", code, errOut)
	}
	if _, errOut, code := e.nsfdWith([]string{"NSFD_TOKEN=ann:x"}, "call", "kv", "get", "--user", "bob"); code != 2 || !strings.Contains(errOut, "--user and a credential") {
		t.Fatalf("--user with a credential: %d %q", code, errOut)
	}
	cred := filepath.Join(t.TempDir(), "cred")
	os.WriteFile(cred, []byte("ann:s3cret\n"), 0o644)
	if _, errOut, code := e.nsfd("call", "kv", "get", "--token-file", cred); code != 1 || !strings.Contains(errOut, "readable by every user") || strings.Contains(errOut, "s3cret") {
		t.Fatalf("a credential file others can read: %d %q", code, errOut)
	}
}
