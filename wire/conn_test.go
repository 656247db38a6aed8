package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConnServerClosing(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	c := dialConn(t, srv.addr, CodecJSON)
	resp := mustCall(t, c, &Request{Command: "bye"})
	if resp.Code != CodeSessionLimitClosed {
		t.Fatalf("bye: %d", resp.Code)
	}
	if err := c.Err(); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Err() after 2502 = %v", err)
	}
	if _, err := c.Call(context.Background(), echoReq(1)); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Call after 2502 = %v", err)
	}
}

func TestConnDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	m := NewMux()
	m.RouteFunc("hang", func(ctx context.Context, req *Request) *Response {
		<-release
		return OK(nil)
	})
	m.RouteFunc("echo", func(ctx context.Context, req *Request) *Response { return OK(nil) })
	srv := startServer(t, m, ServerOptions{})

	c := dialConn(t, srv.addr, CodecJSON)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, &Request{Command: "hang"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call past its deadline = %v", err)
	}
	if c.Err() == nil {
		t.Error("Conn usable after a timed-out call")
	}

	c = dialConn(t, srv.addr, CodecJSON)
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, &Request{Command: "hang"})
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Call = %v", err)
	}

	// A deadline that does not expire leaves the Conn usable, and later
	// calls without one are not bound by it.
	c = dialConn(t, srv.addr, CodecJSON)
	ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := c.Call(ctx, &Request{Command: "echo"}); err != nil {
		t.Fatal(err)
	}
	if resp := mustCall(t, c, &Request{Command: "echo"}); resp.Code != CodeOK {
		t.Errorf("second call: %d", resp.Code)
	}
}

func TestConnRequestTooLarge(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	c := NewConn(dialRaw(t, srv.addr), nil, 200)
	_, err := c.Call(context.Background(), &Request{Command: "echo", Data: json.RawMessage(`"` + strings.Repeat("x", 300) + `"`)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("Call = %v, want ErrFrameTooLarge", err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
	if resp := mustCall(t, c, echoReq(1)); resp.Code != CodeOK {
		t.Errorf("next: %d", resp.Code)
	}
	c.Close()
	if _, err := c.Call(context.Background(), echoReq(1)); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Call after Close = %v", err)
	}
	if err := c.Err(); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Err() after Close = %v", err)
	}
}

func TestConnConcurrentCalls(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	c := dialConn(t, srv.addr, CodecJSON)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				n := g*1000 + i
				resp, err := c.Call(context.Background(), echoReq(n))
				if err != nil {
					t.Error(err)
					return
				}
				if want := fmt.Sprintf(`{"n":%d}`, n); string(resp.Data) != want {
					t.Errorf("got %s, want %s", resp.Data, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestConnMalformedResponse(t *testing.T) {
	client, server := tcpPair(t)
	go func() {
		ReadFrame(server, nil, 0)
		WriteFrame(server, []byte("not json"))
		ReadFrame(server, nil, 0) // until the client closes
	}()
	c := NewConn(client, nil, 0)
	if _, err := c.Call(context.Background(), echoReq(1)); err == nil {
		t.Fatal("malformed response accepted")
	}
	if c.Err() == nil {
		t.Error("Conn usable after a malformed response")
	}
}
