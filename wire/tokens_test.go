package wire

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hashAt is a token's bcrypt hash at the lowest cost, for fast tests.
func hashAt(tb testing.TB, token string) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(token), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return string(h)
}

// countChecks counts the bcrypt comparisons until the test ends.
func countChecks(tb testing.TB) *atomic.Int64 {
	var n atomic.Int64
	old := compareHash
	compareHash = func(h, p []byte) error { n.Add(1); return old(h, p) }
	tb.Cleanup(func() { compareHash = old })
	return &n
}

func writeTokens(tb testing.TB, path, text string) {
	tb.Helper()
	// Through a new file and a rename, as an editor saves: a new inode,
	// whatever the clock's resolution.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

func TestParseTokens(t *testing.T) {
	good := hashAt(t, "x")
	for _, c := range []struct{ name, text, want string }{
		{"ok", "# comment\n\nann:" + good + "\nbob:" + good + ":get, put\ncid:" + good + ":*\n", ""},
		{"no hash", "ann\n", "f:1: want USER:HASH"},
		{"too many fields", "ann:" + good + ":get:put\n", "f:1: want USER:HASH"},
		{"not bcrypt", "\nann:5f4dcc3b5aa765d61d8327deb882cf99\n", "f:2: user \"ann\": the hash is not bcrypt"},
		{"twice", "ann:" + good + "\nann:" + good + "\n", "f:2: user \"ann\" again (first on line 1)"},
		{"space in user", "a n:" + good + "\n", "f:1: user name \"a n\""},
		{"no command", "ann:" + good + ": , \n", "f:1: user \"ann\": no command listed"},
	} {
		lines, err := ParseTokens("f", []byte(c.text))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == "":
			if len(lines) != 3 || lines[0].Commands != nil || strings.Join(lines[1].Commands, "|") != "get|put" || lines[2].Commands != nil {
				t.Errorf("%s: %+v", c.name, lines)
			}
		case err == nil || !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), good) {
			t.Errorf("%s: the error shows a hash: %v", c.name, err)
		}
	}
}

func TestTokensAuthorize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, "ann:"+hashAt(t, "ann-token")+"\nbatch:"+hashAt(t, "batch-token")+":get,put\n")
	tok, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	checks := countChecks(t)
	code := func(user, pass, command string) int {
		t.Helper()
		return CodeOf(tok.Authorize(context.Background(), &Request{Command: command, User: user, Pass: pass}))
	}
	for _, c := range []struct {
		user, pass, command string
		want                int
	}{
		{"ann", "ann-token", "anything", CodeOK},
		{"batch", "batch-token", "put", CodeOK},
		{"batch", "batch-token", "del", CodeAuthorization},
		{"ann", "wrong", "get", CodeAuthentication},
		{"nobody", "ann-token", "get", CodeAuthentication},
		{"ann", "", "get", CodeInvalidAuthInfo},
		{"", "ann-token", "get", CodeInvalidAuthInfo},
		{"ann", strings.Repeat("x", 73), "get", CodeInvalidAuthInfo},
		{"a\nn", "ann-token", "get", CodeInvalidAuthInfo},
	} {
		if got := code(c.user, c.pass, c.command); got != c.want {
			t.Errorf("%s/%s %s: %d, want %d", c.user, c.pass, c.command, got, c.want)
		}
	}
	// An unknown user costs a check too: the time does not tell who exists.
	before := checks.Load()
	code("nobody", "x", "get")
	if checks.Load() != before+1 {
		t.Error("an unknown user was not checked against a hash")
	}
	// A pair that matched is remembered: a hot path pays the hash once.
	before = checks.Load()
	for range 100 {
		if got := code("ann", "ann-token", "get"); got != CodeOK {
			t.Fatalf("ann: %d", got)
		}
	}
	if n := checks.Load() - before; n != 0 {
		t.Fatalf("%d bcrypt checks for 100 requests of a known pair", n)
	}
	// A wrong token is never remembered: every guess pays.
	before = checks.Load()
	for range 3 {
		code("ann", "guess", "get")
	}
	if n := checks.Load() - before; n != 3 {
		t.Fatalf("%d checks for 3 wrong guesses", n)
	}
	// The remembered pair still gets its authorization checked.
	for range 2 {
		if got := code("batch", "batch-token", "del"); got != CodeAuthorization {
			t.Fatalf("batch del: %d", got)
		}
	}

	// A changed file applies within a second: ann's token changes, and
	// what was remembered is forgotten.
	writeTokens(t, path, "ann:"+hashAt(t, "new-token")+"\n")
	tok.mu.Lock()
	tok.checked = time.Time{} // as if a second had passed
	tok.mu.Unlock()
	if got := code("ann", "ann-token", "get"); got != CodeAuthentication {
		t.Fatalf("ann's old token after the change: %d", got)
	}
	if got := code("ann", "new-token", "get"); got != CodeOK {
		t.Fatalf("ann's new token: %d", got)
	}
	// A file that no longer loads refuses everyone, until it is fixed.
	writeTokens(t, path, "ann:not-a-hash\n")
	tok.mu.Lock()
	tok.checked = time.Time{}
	tok.mu.Unlock()
	if got := code("ann", "new-token", "get"); got != CodeAuthentication {
		t.Fatalf("with a broken file: %d", got)
	}
}

func TestLoadTokensErrors(t *testing.T) {
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "none")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestServerChecksTokens: through a real server, a request the tokens
// refuse never reaches the handler, is answered with its code, and the
// third refusal on a connection closes it; the token is never logged.
func TestServerChecksTokens(t *testing.T) {
	const secret = "s3cret-t0ken-do-not-log"
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, "ann:"+hashAt(t, secret)+":get,panic\n")
	tok, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		handled.Add(1)
		if req.Command == "panic" {
			panic("handler panics with " + req.String())
		}
		return OK(req.User)
	})
	s := startServer(t, h, ServerOptions{Auth: tok})
	c := dialConn(t, s.addr, CodecJSON)
	if r := mustCall(t, c, &Request{Command: "get", User: "ann", Pass: secret}); r.Code != CodeOK || r.Meta.User != "ann" {
		t.Fatalf("good token: %+v", r)
	}
	for i, req := range []*Request{
		{Command: "get", User: "ann", Pass: "wrong-" + secret},
		{Command: "put", User: "ann", Pass: secret},
	} {
		r := mustCall(t, c, req)
		if want := []int{CodeAuthentication, CodeAuthorization}[i]; r.Code != want {
			t.Fatalf("request %d: %d %s, want %d", i, r.Code, r.Message, want)
		}
	}
	if handled.Load() != 1 {
		t.Fatalf("the handler ran %d times, want once", handled.Load())
	}
	r := mustCall(t, c, &Request{Command: "get", User: "ann"})
	if r.Code != CodeAuthFailedClosing || !strings.Contains(r.Message, Message(CodeInvalidAuthInfo)) {
		t.Fatalf("third refusal: %d %s", r.Code, r.Message)
	}
	expectClosed(t, c.NetConn())

	// A failure inside the handler is logged with the request, never with
	// its token; nor is a refused one's.
	c = dialConn(t, s.addr, CodecJSON)
	mustCall(t, c, &Request{Command: "get", User: "ann", Pass: "x" + secret})
	if r := mustCall(t, c, &Request{Command: "panic", User: "ann", Pass: secret}); r.Code != CodeCommandFailed {
		t.Fatalf("panic: %+v", r)
	}
	if !s.log.waitFor("handler panicked", `user=\"ann\"`, "pass=<redacted>") {
		t.Fatal("the panic was not logged with its request")
	}
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	for _, l := range s.log.lines {
		if strings.Contains(l, secret) {
			t.Fatalf("the token was logged: %s", l)
		}
	}
}
