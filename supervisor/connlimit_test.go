package supervisor

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestConnCap(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		n      int
		want   int
	}{
		{1 << 20, 2, maxConnsPerListener},
		{1024, 2, maxConnsPerListener},
		{256, 2, 32},
		{256, 1, 64},
		{130, 2, 4},
		{0, 2, 4},
		{^uint64(0), 0, maxConnsPerListener},
	} {
		if got := connCap(tc.nofile, tc.n); got != tc.want {
			t.Errorf("connCap(%d, %d) = %d, want %d", tc.nofile, tc.n, got, tc.want)
		}
	}
}

// serveLimited serves h on loopback with a cap of max connections.
func serveLimited(t *testing.T, max int, h http.Handler) (string, *connLimit) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, cl := newHTTPServer(h, "test", max, hclog.NewNullLogger())
	go srv.Serve(cl.listener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), cl
}

// dialCounted opens a connection and waits until the server counts it.
func dialCounted(t *testing.T, addr string, cl *connLimit, want int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitUntil(t, "the connection counted", func() bool { n, _ := cl.live(); return n == want })
	return c
}

func get(c net.Conn, path string) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// closed reports whether the server closed c.
func closed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !strings.Contains(err.Error(), "timeout")
}

func TestConnLimitClosesTheLongestIdleToMakeRoom(t *testing.T) {
	addr, cl := serveLimited(t, 3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	first := dialCounted(t, addr, cl, 1) // never sends anything
	second := dialCounted(t, addr, cl, 2)
	if body, err := get(second, "/"); err != nil || body != "ok" { // a keep-alive connection, idle since
		t.Fatalf("GET = %q, %v", body, err)
	}
	// The answer may reach the client before the server marks the
	// connection idle: wait for that, so that it is idle before third comes.
	waitUntil(t, "the keep-alive connection idle", func() bool { _, busy := cl.live(); return busy == 0 })
	third := dialCounted(t, addr, cl, 3)
	io.WriteString(third, "GET / HTTP/1.1\r\nHo") // a header that trickles in: idle too

	// At the cap, the operator's connection gets in; the longest idle goes.
	op, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if body, err := get(op, "/"); err != nil || body != "ok" {
		t.Fatalf("GET at the cap = %q, %v", body, err)
	}
	if !closed(first) {
		t.Error("the connection idle the longest was not closed")
	}
	if n, _ := cl.live(); n > 3 {
		t.Errorf("%d connections live, cap 3", n)
	}
	// Another newcomer makes the next longest idle go: the keep-alive one.
	op2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer op2.Close()
	if body, err := get(op2, "/"); err != nil || body != "ok" {
		t.Fatalf("second GET at the cap = %q, %v", body, err)
	}
	if !closed(second) {
		t.Error("the idle keep-alive connection was not closed")
	}
}

func TestConnLimitRefusesWhenEveryConnectionIsBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	addr, cl := serveLimited(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	done := make(chan string, 2)
	for i := range 2 {
		c := dialCounted(t, addr, cl, i+1)
		go func() { body, _ := get(c, "/"); done <- body }()
		<-entered
	}
	late, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if !closed(late) {
		t.Error("a connection beyond the cap was not closed while every other was busy")
	}
	close(release)
	for range 2 {
		if body := <-done; body != "done" {
			t.Errorf("a busy request was cut: %q", body)
		}
	}
}

func TestHTTPServerBoundsRequests(t *testing.T) {
	addr, _ := serveLimited(t, 4, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "ok")
	}))
	big := strings.Repeat("x", httpMaxBodyBytes+1)
	for _, body := range []io.Reader{strings.NewReader(big), io.MultiReader(strings.NewReader(big))} { // with a length, and chunked
		resp, err := http.Post("http://"+addr+"/", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("an oversized body: %s, want 413", resp.Status)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("y", httpMaxHeaderBytes+4096))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an oversized header: %s, want 431", resp.Status)
	}
}

// A client that does not read its answer holds its connection no longer
// than the write timeout; then it no longer counts against the cap.
func TestHTTPServerDropsAClientThatDoesNotRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, cl := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 64<<20)) // more than any socket buffer holds
	}), "test", 4, hclog.NewNullLogger())
	if srv.WriteTimeout != httpWriteTimeout || srv.ReadHeaderTimeout != httpReadHeaderTimeout || srv.IdleTimeout != httpIdleTimeout {
		t.Fatalf("timeouts %v %v %v; want the master's", srv.WriteTimeout, srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	srv.WriteTimeout = 200 * time.Millisecond // shortened for the test
	go srv.Serve(cl.listener(ln))
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	waitUntil(t, "the connection counted", func() bool { n, _ := cl.live(); return n == 1 })
	waitUntil(t, "the connection dropped", func() bool { n, _ := cl.live(); return n == 0 })
}

// A stream (a watch) leaves the connection cap, so streams never crowd
// out requests, and has a cap of its own.
func TestConnLimitStreamsHaveTheirOwnCap(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var addr string
	var cl *connLimit
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			if !cl.stream(r.Context().Value(connKey{}).(*limitedConn)) {
				http.Error(w, "too many streams", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			<-release
			return
		}
		io.WriteString(w, "ok")
	})
	addr, cl = serveLimited(t, 2, h)
	cl.maxStreams = 2
	for i := range 2 {
		c := dialCounted(t, addr, cl, 1)
		if code, err := statusOf(c, "/stream"); code != http.StatusOK {
			t.Fatalf("stream %d: %d, %v", i, code, err)
		}
		waitUntil(t, "the stream out of the connection cap", func() bool { n, _ := cl.live(); return n == 0 })
	}
	// Both connection slots are still free for requests.
	for range 2 {
		c := dialCounted(t, addr, cl, 1)
		if got, err := get(c, "/"); err != nil || got != "ok" {
			t.Fatalf("request beside the streams: %q, %v", got, err)
		}
		c.Close()
		waitUntil(t, "the connection forgotten", func() bool { n, _ := cl.live(); return n == 0 })
	}
	// A third stream is refused.
	c := dialCounted(t, addr, cl, 1)
	if code, err := statusOf(c, "/stream"); code != http.StatusServiceUnavailable {
		t.Fatalf("third stream: %d, %v; want 503", code, err)
	}
}

// statusOf sends a GET and returns the answer's status code, without
// reading its body.
func statusOf(c net.Conn, path string) (int, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// An upgrade pauses the control socket and drains it: it waits for every
// request under way but the one that asked for the exec, which would
// otherwise wait for itself.
func TestConnLimitDrainWaitsForAllButTheCaller(t *testing.T) {
	self := make(chan net.Conn, 1)
	release, releaseSelf := make(chan struct{}), make(chan struct{})
	defer close(releaseSelf)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/self" {
			self <- r.Context().Value(connKey{}).(net.Conn)
			<-releaseSelf // past the drain
		}
		<-release
		io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, cl := newHTTPServer(h, "test", 8, hclog.NewNullLogger())
	go srv.Serve(cl.listener(ln))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	caller := dialCounted(t, addr, cl, 1)
	io.WriteString(caller, "POST /self HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	callerConn := <-self
	other := dialCounted(t, addr, cl, 2)
	answered := make(chan string, 1)
	go func() {
		body, err := get(other, "/other")
		if err != nil {
			body = err.Error()
		}
		answered <- body
	}()
	waitUntil(t, "both requests under way", func() bool { _, busy := cl.live(); return busy == 2 })

	ln.Close()
	srv.SetKeepAlivesEnabled(false)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = cl.drain(ctx, callerConn)
	cancel()
	if err == nil {
		t.Fatal("drain returned while another request was under way")
	}
	close(release)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.drain(ctx, callerConn); err != nil {
		t.Fatalf("drain with only the caller's request left: %v", err)
	}
	if body := <-answered; body != "ok" {
		t.Errorf("the other request got %q", body)
	}
}
