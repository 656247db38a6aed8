package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// runTestSupervisor runs a master on an etc/ with no daemon, its files in a
// temp dir, until the test ends.
func runTestSupervisor(tb testing.TB) *Supervisor {
	tb.Helper()
	dir, err := os.MkdirTemp("", "nsfd") // short: the control socket's path has a limit
	if err != nil {
		tb.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		tb.Fatal(err)
	}
	ini := "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = error\n"
	if err := os.WriteFile(filepath.Join(etc, "nsfd.ini"), []byte(ini), 0o644); err != nil {
		tb.Fatal(err)
	}
	s := newTestMaster(tb, etc, Options{Shim: []string{"/bin/false"}})
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- s.Run(ctx, func() { close(ready) }) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	})
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatal("the master did not come up")
	}
	return s
}

// unsafeForTerminal reports whether b holds a raw control character (but
// newlines), DEL, a C1 control or a bidirectional control.
func unsafeForTerminal(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1,
			r < 0x20 && r != '\n', r == 0x7f, r >= 0x80 && r <= 0x9f,
			r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x2028 && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return true
		}
		b = b[n:]
	}
	return false
}

// FuzzControlAPI sends raw HTTP requests (any method, path, query, header,
// body) from any uid to the control API of a running master with no
// daemon. Whatever comes in: no panic, no hang, a status of the API's,
// and every answer but a metrics scrape a JSON object — with "error" when
// it is not 200 — that prints safely on a terminal.
func FuzzControlAPI(f *testing.F) {
	for _, s := range []string{
		"GET /v1/status HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"GET /v1/status?name=%1b%5d0%3Bx%07 HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"POST /v1/reload HTTP/1.1\r\nHost: nsfd\r\nContent-Length: 0\r\n\r\n",
		"POST /v1/daemons/echo/scale?n=%2B9223372036854775807 HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"POST /v1/daemons/echo/scale?n=-1&n=2 HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"POST /v1/daemons/echo/frobnicate HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"POST /v1/daemons/%E2%80%AEcho/stop HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"DELETE /v1/status HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"GET /v1//status/../status HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: nsfd\r\n\r\n",
		"POST /v1/reload HTTP/1.1\r\nHost: nsfd\r\nContent-Length: 99999999999\r\n\r\nxx",
		"POST /v1/reload HTTP/1.1\r\nHost: nsfd\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: nsfd\r\n\r\n",
	} {
		f.Add([]byte(s), uint32(0))
	}
	f.Add([]byte("GET /v1/status HTTP/1.1\r\nHost: nsfd\r\n\r\n"), uint32(65534))
	s := runTestSupervisor(f)
	srv, _ := newHTTPServer(s.controlHandler(s.apiHandler(), -1), "fuzz", 4, hclog.NewNullLogger())
	self := uint32(os.Geteuid())
	f.Fuzz(func(t *testing.T, raw []byte, uid uint32) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // the server answers 400 itself
		}
		ctx, cancel := context.WithTimeout(context.WithValue(req.Context(), credsKey{}, &peerCred{Uid: uid, Gid: uid}), 20*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, req.WithContext(ctx))
		switch rec.Code {
		case 200, 301, 307, 308, 400, 403, 404, 405, 409, 413, 500:
		default:
			t.Fatalf("%q: status %d", raw, rec.Code)
		}
		body := rec.Body.Bytes()
		// A stranger learns nothing but 403 (or 413: a body too large is
		// refused before anything else, without reading it).
		if uid != 0 && uid != self && rec.Code != http.StatusForbidden && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("%q from uid %d: %d, want 403", raw, uid, rec.Code)
		}
		if req.URL.Path == "/metrics" && rec.Code == http.StatusOK {
			return
		}
		var answer map[string]any
		if err := json.Unmarshal(body, &answer); err != nil {
			t.Fatalf("%q: %d, not a JSON object: %v\n%s", raw, rec.Code, err, body)
		}
		if msg, _ := answer["error"].(string); rec.Code != http.StatusOK && msg == "" {
			t.Fatalf("%q: %d without an error: %s", raw, rec.Code, body)
		}
		if unsafeForTerminal(body) {
			t.Fatalf("%q: the answer holds what acts on a terminal: %q", raw, body)
		}
		if strings.Contains(string(body), "panic") {
			t.Fatalf("%q: %s", raw, body)
		}
	})
}
