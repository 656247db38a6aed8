package bench

// Quick checks of the load generator against in-process servers: these run
// under plain `go test ./...`, the benchmarks do not.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadHTTPResponse(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		ok        bool
		rest      string
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloNEXT", true, "NEXT"},
		{"case", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nNEXT", true, "NEXT"},
		{"status", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, ""},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, ""},
		{"bad header", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", false, ""},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", false, ""},
		{"cut", "HTTP/1.1 200 OK\r\nContent-Len", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.raw))
			err := readHTTPResponse(r)
			if (err == nil) != tc.ok {
				t.Fatalf("readHTTPResponse: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok {
				rest, _ := io.ReadAll(r)
				if string(rest) != tc.rest {
					t.Errorf("left %q, want %q", rest, tc.rest)
				}
			}
		})
	}
}

func TestLoadGenerator(t *testing.T) {
	echoAddr := serveEcho(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))
	t.Cleanup(hs.Close)
	httpAddr := strings.TrimPrefix(hs.URL, "http://")

	for _, tc := range []struct {
		w    workload
		addr string
	}{
		{echoKeepAlive, echoAddr},
		{echoConnect, echoAddr},
		{httpKeepAlive, httpAddr},
		{httpConnect, httpAddr},
	} {
		t.Run(tc.w.String(), func(t *testing.T) {
			r := generateLoad(context.Background(), tc.w, tc.addr, 2, 200*time.Millisecond)
			if r.Requests == 0 || r.Errors != 0 || r.Redials != 0 {
				t.Fatalf("%+v, want requests and no errors", r)
			}
			if r.P50 <= 0 || r.P99 < r.P50 || r.RPS() <= 0 {
				t.Fatalf("%+v: inconsistent latency or rate", r)
			}
			if r.Elapsed > 200*time.Millisecond+ioGrace {
				t.Fatalf("ran %v, longer than its bound", r.Elapsed)
			}
		})
	}
}

func TestLoadGeneratorCountsErrors(t *testing.T) {
	// A port nobody listens on: every request fails, and the run still ends on time.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := generateLoad(context.Background(), echoKeepAlive, addr, 2, 50*time.Millisecond)
	if r.Requests != 0 || r.Errors == 0 {
		t.Fatalf("%+v, want only errors", r)
	}
	if r.Elapsed > time.Second {
		t.Fatalf("ran %v against a closed port", r.Elapsed)
	}
}

// serveEcho serves the echo protocol on loopback until the test ends.
func serveEcho(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Error(err)
				}
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}
