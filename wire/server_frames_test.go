package wire

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestServeGarbageFrame(t *testing.T) {
	for _, codec := range []string{CodecJSON, CodecJSONGzip} {
		t.Run(codec, func(t *testing.T) {
			srv := startServer(t, testMux(), ServerOptions{Codec: codec})
			nc := dialRaw(t, srv.addr)
			garbage := make([]byte, 16<<10)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range garbage {
				garbage[i] = byte(rng.Uint32())
			}
			for range 2 {
				if err := WriteFrame(nc, garbage); err != nil {
					t.Fatal(err)
				}
				resp, err := readResponse(t, nc, codec)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Code != CodeSyntaxError || !strings.HasPrefix(resp.Message, Message(CodeSyntaxError)) {
					t.Errorf("garbage answered %d %q", resp.Code, resp.Message)
				}
			}
			// The connection is still usable.
			c := NewConn(nc, mustLookup(t, codec), 0)
			if resp := mustCall(t, c, echoReq(1)); resp.Code != CodeOK {
				t.Errorf("after garbage: %d %s", resp.Code, resp.Message)
			}
		})
	}
}

func TestServeEmptyAndNullFrames(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	nc := dialRaw(t, srv.addr)
	for _, payload := range []string{"", "null", "[]", `{"command":1}`, `{"command":"echo"} x`} {
		WriteFrame(nc, []byte(payload))
		resp, err := readResponse(t, nc, CodecJSON)
		if err != nil {
			t.Fatal(err)
		}
		want := CodeSyntaxError
		if payload == "null" {
			want = CodeMissingParam // decodes to a request without a command
		}
		if resp.Code != want {
			t.Errorf("%q answered %d %s, want %d", payload, resp.Code, resp.Message, want)
		}
	}
}

func TestServeOversizedFrame(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{})
	nc := dialRaw(t, srv.addr)
	if _, err := nc.Write([]byte{0xff, 0xff, 0xff, 0xff, 'x', 'y'}); err != nil {
		t.Fatal(err)
	}
	resp, err := readResponse(t, nc, CodecJSON)
	if err != nil {
		t.Fatalf("no response to an oversized frame: %v", err)
	}
	if resp.Code != CodeFailedClosing {
		t.Errorf("oversized frame answered %d %s", resp.Code, resp.Message)
	}
	expectClosed(t, nc)

	// A new connection is served.
	c := dialConn(t, srv.addr, CodecJSON)
	if resp := mustCall(t, c, echoReq(1)); resp.Code != CodeOK {
		t.Errorf("next connection: %d", resp.Code)
	}
	if !srv.log.waitFor("frame too large") {
		t.Error("oversized frame not logged")
	}
}

func TestServeConfiguredMaxFrame(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{MaxFrame: 1000})
	c := dialConn(t, srv.addr, CodecJSON)
	// A response over the limit is replaced by an error.
	resp := mustCall(t, c, &Request{Command: "big"})
	if resp.Code != CodeCommandFailed || !strings.Contains(resp.Message, "frame too large") {
		t.Errorf("big response: %d %s", resp.Code, resp.Message)
	}
	// A request over the limit closes the connection.
	nc := dialRaw(t, srv.addr)
	WriteFrame(nc, bytes.Repeat([]byte{' '}, 1001))
	expectClosed(t, nc)
	if resp := mustCall(t, c, echoReq(2)); resp.Code != CodeOK {
		t.Errorf("other connection: %d", resp.Code)
	}
}

func TestServeConnTruncatedFrame(t *testing.T) {
	client, server := tcpPair(t)
	done := serveConnAsync(context.Background(), t, server, testMux(), ServerOptions{})
	client.Write([]byte{0, 0, 0, 100})
	client.Write([]byte(`{"command":`))
	client.Close()
	if err := waitDone(t, done); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ServeConn = %v, want io.ErrUnexpectedEOF", err)
	}

	// Through Serve: the next client is served.
	srv := startServer(t, testMux(), ServerOptions{})
	nc := dialRaw(t, srv.addr)
	nc.Write([]byte{0, 0, 0, 100, '{'})
	nc.Close()
	c := dialConn(t, srv.addr, CodecJSON)
	if resp := mustCall(t, c, echoReq(1)); resp.Code != CodeOK {
		t.Errorf("next client: %d", resp.Code)
	}
}

func TestServeGzipBomb(t *testing.T) {
	srv := startServer(t, testMux(), ServerOptions{Codec: CodecJSONGzip, MaxFrame: 1 << 20})
	var comp bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&comp, gzip.BestSpeed)
	zw.Write([]byte(`{"command":"echo","data":"`))
	zw.Write(make([]byte, 8<<20))
	zw.Close()
	nc := dialRaw(t, srv.addr)
	if err := WriteFrame(nc, comp.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := readResponse(t, nc, CodecJSONGzip)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != CodeValueRange || !strings.Contains(resp.Message, "decoded message too large") {
		t.Errorf("bomb answered %d %q", resp.Code, resp.Message)
	}
	c := NewConn(nc, mustLookup(t, CodecJSONGzip), 1<<20)
	if resp := mustCall(t, c, echoReq(1)); resp.Code != CodeOK {
		t.Errorf("after the bomb: %d", resp.Code)
	}
}
