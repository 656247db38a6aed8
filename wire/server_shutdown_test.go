package wire

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestServeConnCleanClose(t *testing.T) {
	client, server := tcpPair(t)
	done := serveConnAsync(context.Background(), t, server, testMux(), ServerOptions{})
	c := NewConn(client, nil, 0)
	mustCall(t, c, echoReq(1))
	c.Close()
	if err := waitDone(t, done); err != nil {
		t.Errorf("ServeConn after a clean close = %v", err)
	}
}

func TestServeConnCancelIdle(t *testing.T) {
	client, server := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := serveConnAsync(ctx, t, server, testMux(), ServerOptions{})
	c := NewConn(client, nil, 0)
	mustCall(t, c, echoReq(1))
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("ServeConn after cancel = %v", err)
	}
	expectClosed(t, client)
}

func TestServeConnCancelInFlight(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	m := NewMux()
	m.RouteFunc("slow", func(ctx context.Context, req *Request) *Response {
		close(started)
		<-release
		return OK("done")
	})
	client, server := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := serveConnAsync(ctx, t, server, m, ServerOptions{})
	c := NewConn(client, nil, 0)
	type result struct {
		resp *Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := c.Call(context.Background(), &Request{Command: "slow"})
		got <- result{resp, err}
	}()
	<-started
	cancel()
	close(release)
	r := <-got
	if r.err != nil || r.resp.Code != CodeOK || string(r.resp.Data) != `"done"` {
		t.Fatalf("in-flight call: %+v, %v", r.resp, r.err)
	}
	if err := waitDone(t, done); err != nil {
		t.Errorf("ServeConn = %v", err)
	}
	expectClosed(t, client)
}

func TestServeCancelWaitsForConnections(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	m := NewMux()
	m.RouteFunc("slow", func(ctx context.Context, req *Request) *Response {
		close(started)
		<-release
		return OK(nil)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, m) }()

	idle := dialConn(t, l.Addr().String(), CodecJSON)
	mustCall(t, idle, &Request{Command: "nothing"})
	busy := dialConn(t, l.Addr().String(), CodecJSON)
	got := make(chan *Response, 1)
	go func() {
		resp, _ := busy.Call(context.Background(), &Request{Command: "slow"})
		got <- resp
	}()
	<-started
	cancel()
	expectClosed(t, idle.NetConn())
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	default:
	}
	close(release)
	if resp := <-got; resp == nil || resp.Code != CodeOK {
		t.Errorf("in-flight response: %+v", resp)
	}
	if err := waitDone(t, served); err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestServeConnIdleTimeout(t *testing.T) {
	client, server := tcpPair(t)
	done := serveConnAsync(context.Background(), t, server, testMux(), ServerOptions{IdleTimeout: 50 * time.Millisecond})
	c := NewConn(client, nil, 0)
	mustCall(t, c, echoReq(1))
	if err := waitDone(t, done); err != nil {
		t.Errorf("ServeConn after idle timeout = %v", err)
	}
	expectClosed(t, client)
}

func TestServeConnCancelledBeforeStart(t *testing.T) {
	client, server := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ServeConn(ctx, server, testMux(), ServerOptions{}); err != nil {
		t.Errorf("ServeConn = %v", err)
	}
	expectClosed(t, client)
}
