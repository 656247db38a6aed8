package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait in these tests, so a bug fails a test
// instead of hanging it.
const testTimeout = 10 * time.Second

// logRecorder collects what a server logs.
type logRecorder struct {
	tb      testing.TB
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on each line
}

func newLogRecorder(tb testing.TB) *logRecorder {
	return &logRecorder{tb: tb, changed: make(chan struct{})}
}

// logger is a Logger whose records l collects.
func (l *logRecorder) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// Write takes one record as slog's text handler writes it.
func (l *logRecorder) Write(p []byte) (int, error) {
	s := strings.TrimSuffix(string(p), "\n")
	l.mu.Lock()
	l.lines = append(l.lines, s)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	l.tb.Log("server log: " + s)
	return len(p), nil
}

// waitFor waits until a logged line contains all of subs, and reports
// whether one did before the test timeout.
func (l *logRecorder) waitFor(subs ...string) bool {
	timeout := time.After(testTimeout)
	for {
		l.mu.Lock()
		changed := l.changed
		for _, s := range l.lines {
			all := true
			for _, sub := range subs {
				all = all && strings.Contains(s, sub)
			}
			if all {
				l.mu.Unlock()
				return true
			}
		}
		l.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			return false
		}
	}
}

// testServer is a Server on loopback TCP, stopped at cleanup.
type testServer struct {
	addr string
	log  *logRecorder
}

func startServer(tb testing.TB, h Handler, opts ServerOptions) *testServer {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	rec := newLogRecorder(tb)
	if opts.Logger == nil {
		opts.Logger = rec.logger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Handler: h, Options: opts}).Serve(ctx, l) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Serve: %v", err)
			}
		case <-time.After(testTimeout):
			tb.Error("Serve did not return after cancel")
		}
	})
	return &testServer{addr: l.Addr().String(), log: rec}
}

func dialRaw(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	return nc
}

func dialConn(tb testing.TB, addr string, codec string) *Conn {
	tb.Helper()
	return NewConn(dialRaw(tb, addr), mustLookup(tb, codec), 0)
}

func mustCall(tb testing.TB, c *Conn, req *Request) *Response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := c.Call(ctx, req)
	if err != nil {
		tb.Fatalf("Call(%v): %v", req, err)
	}
	return resp
}

// readResponse reads one response frame from a raw connection.
func readResponse(tb testing.TB, nc net.Conn, codec string) (*Response, error) {
	tb.Helper()
	frame, err := ReadFrame(nc, nil, 0)
	if err != nil {
		return nil, err
	}
	resp := new(Response)
	if err := mustLookup(tb, codec).Decode(frame, resp); err != nil {
		tb.Fatalf("decode response %q: %v", frame, err)
	}
	return resp, nil
}

// expectClosed checks that the server closed nc: reading gives EOF or a
// reset, not a timeout.
func expectClosed(tb testing.TB, nc net.Conn) {
	tb.Helper()
	nc.SetReadDeadline(time.Now().Add(testTimeout))
	_, err := io.Copy(io.Discard, nc)
	if isTimeout(err) {
		tb.Fatalf("connection still open: %v", err)
	}
}

// testMux is a daemon with a few commands.
func testMux() *Mux {
	m := NewMux()
	m.RouteFunc("echo", func(ctx context.Context, req *Request) *Response {
		return &Response{Code: CodeOK, Data: req.Data}
	})
	m.RouteFunc("panic", func(ctx context.Context, req *Request) *Response {
		panic("boom")
	})
	m.RouteFunc("nil", func(ctx context.Context, req *Request) *Response { return nil })
	m.RouteFunc("big", func(ctx context.Context, req *Request) *Response {
		return OK(strings.Repeat("x", 2000))
	})
	m.RouteFunc("bye", func(ctx context.Context, req *Request) *Response {
		return Failf(CodeSessionLimitClosed, "go away")
	})
	return m
}

func echoReq(i int) *Request {
	return &Request{Command: "echo", ID: fmt.Sprint("id-", i), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
}

func TestServeManyRequestsPerConnection(t *testing.T) {
	for _, codec := range []string{CodecJSON, CodecJSONGzip} {
		t.Run(codec, func(t *testing.T) {
			srv := startServer(t, testMux(), ServerOptions{Codec: codec})
			c := dialConn(t, srv.addr, codec)
			for i := range 200 {
				resp := mustCall(t, c, echoReq(i))
				if resp.Code != CodeOK || resp.Message != Message(CodeOK) {
					t.Fatalf("call %d: %d %s", i, resp.Code, resp.Message)
				}
				if want := fmt.Sprintf(`{"n":%d}`, i); string(resp.Data) != want {
					t.Fatalf("call %d: data %s, want %s", i, resp.Data, want)
				}
				if resp.Meta.Transaction != fmt.Sprint("id-", i) {
					t.Fatalf("call %d: transaction %q", i, resp.Meta.Transaction)
				}
			}
		})
	}
}

func TestServeMeta(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	c := dialConn(t, srv.addr, CodecJSON)
	r1 := mustCall(t, c, &Request{Command: "echo", User: "ann", Pass: "secret"})
	r2 := mustCall(t, c, &Request{Command: "echo"})
	if r1.Meta.Transaction == "" || r2.Meta.Transaction == "" || r1.Meta.Transaction == r2.Meta.Transaction {
		t.Errorf("generated transactions %q, %q", r1.Meta.Transaction, r2.Meta.Transaction)
	}
	if r1.Meta.User != "ann" || r2.Meta.User != "" {
		t.Errorf("users %q, %q", r1.Meta.User, r2.Meta.User)
	}
	if r1.Meta.Duration < 0 {
		t.Errorf("duration %v", r1.Meta.Duration)
	}
}

func TestServePipelined(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	nc := dialRaw(t, srv.addr)
	var frames []byte
	for i := range 5 {
		var err error
		if frames, err = AppendFrame(frames, mustLookup(t, CodecJSON), echoReq(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		resp, err := readResponse(t, nc, CodecJSON)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Meta.Transaction != fmt.Sprint("id-", i) {
			t.Errorf("response %d is for %q", i, resp.Meta.Transaction)
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	client = dialRaw(tb, l.Addr().String())
	server, err = l.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { server.Close() })
	return client, server
}

// serveConnAsync runs ServeConn and returns a channel for its result.
func serveConnAsync(ctx context.Context, tb testing.TB, c net.Conn, h Handler, opts ServerOptions) <-chan error {
	if opts.Logger == nil {
		opts.Logger = newLogRecorder(tb).logger()
	}
	done := make(chan error, 1)
	go func() { done <- ServeConn(ctx, c, h, opts) }()
	return done
}

func waitDone(tb testing.TB, done <-chan error) error {
	tb.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(testTimeout):
		tb.Fatal("ServeConn did not return")
		return nil
	}
}

func TestServeUnknownCommand(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	c := dialConn(t, srv.addr, CodecJSON)
	resp := mustCall(t, c, &Request{Command: "frobnicate"})
	if resp.Code != CodeUnknownCommand || resp.Message != `Unknown command: "frobnicate"` {
		t.Errorf("unknown command: %d %q", resp.Code, resp.Message)
	}
	if err := resp.Err(); !errors.Is(err, &Error{Code: CodeUnknownCommand}) {
		t.Errorf("Err() = %v", err)
	}
	if resp := mustCall(t, c, echoReq(1)); resp.Code != CodeOK {
		t.Errorf("next: %d", resp.Code)
	}
}

func TestServeHandlerPanic(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	c := dialConn(t, srv.addr, CodecJSON)
	resp := mustCall(t, c, &Request{Command: "panic", ID: "p1"})
	if resp.Code != CodeCommandFailed || resp.Meta.Transaction != "p1" {
		t.Errorf("panic answered %d %q %q", resp.Code, resp.Message, resp.Meta.Transaction)
	}
	if strings.Contains(resp.Message, "boom") {
		t.Errorf("panic value leaked to the client: %q", resp.Message)
	}
	if !srv.log.waitFor("panic", "boom") {
		t.Error("panic not logged")
	}
	if resp := mustCall(t, c, echoReq(1)); resp.Code != CodeOK {
		t.Errorf("after panic: %d", resp.Code)
	}
	resp = mustCall(t, c, &Request{Command: "nil"})
	if resp.Code != CodeCommandFailed {
		t.Errorf("nil response answered %d", resp.Code)
	}
}

func TestServeUnknownCodec(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = (&Server{Handler: testMux(), Options: ServerOptions{Codec: "xml"}}).Serve(context.Background(), l)
	if !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("Serve = %v, want ErrUnknownCodec", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener not closed: %v", err)
	}
	_, server := tcpPair(t)
	if err := ServeConn(context.Background(), server, testMux(), ServerOptions{Codec: "xml"}); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("ServeConn = %v, want ErrUnknownCodec", err)
	}
	if err := Serve(context.Background(), l, nil); err == nil {
		t.Error("Serve without a handler succeeded")
	}
}
