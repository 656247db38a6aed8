package wire

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"runtime"
	"testing"
	"time"
)

// benchRequest is a small request, the size of a key-value put.
func benchRequest() *Request {
	return &Request{
		Command: "put",
		User:    "bench",
		ID:      "req-000001",
		Data:    json.RawMessage(`{"key":"user:1234","value":"a small value of some bytes"}`),
	}
}

func echoHandler() Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) *Response {
		return &Response{Code: CodeOK, Data: req.Data}
	})
}

// BenchmarkCallRoundTrip is Conn.Call over loopback TCP to ServeConn,
// with a small request echoed back.
func BenchmarkCallRoundTrip(b *testing.B) {
	for _, codec := range []string{CodecJSON, CodecJSONGzip} {
		b.Run(codec, func(b *testing.B) {
			client, server := tcpPair(b)
			ctx, cancel := context.WithCancel(context.Background())
			done := serveConnAsync(ctx, b, server, echoHandler(), ServerOptions{Codec: codec})
			defer func() { cancel(); <-done }()
			client.SetDeadline(time.Time{})
			c := NewConn(client, mustLookup(b, codec), 0)
			req := benchRequest()
			b.ReportAllocs()
			cpu := startCPU(b)
			for b.Loop() {
				resp, err := c.Call(context.Background(), req)
				if err != nil || resp.Code != CodeOK {
					b.Fatal(resp, err)
				}
			}
			cpu.report()
		})
	}
}

// BenchmarkRawRoundTrip is the same exchange without the envelope: a
// length-prefixed frame of the encoded request's size, answered with one of
// the encoded response's size, over loopback TCP.
func BenchmarkRawRoundTrip(b *testing.B) {
	codec := mustLookup(b, CodecJSON)
	reqFrame, err := AppendFrame(nil, codec, benchRequest(), 0)
	if err != nil {
		b.Fatal(err)
	}
	sample := &Response{Code: CodeOK, Message: Message(CodeOK), Data: benchRequest().Data,
		Meta: Meta{Transaction: "req-000001", Duration: 12 * time.Microsecond, User: "bench"}}
	respFrame, err := AppendFrame(nil, codec, sample, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("request frame %d bytes, response frame %d bytes", len(reqFrame), len(respFrame))

	client, server := tcpPair(b)
	client.SetDeadline(time.Time{})
	go func() {
		br := bufio.NewReaderSize(server, 4096)
		buf := make([]byte, 0, 4096)
		for {
			f, err := ReadFrame(br, buf, 0)
			if err != nil {
				return
			}
			buf = f[:0]
			if _, err := server.Write(respFrame); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReaderSize(client, 4096)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, err := client.Write(reqFrame); err != nil {
			b.Fatal(err)
		}
		f, err := ReadFrame(br, buf, 0)
		if err != nil {
			b.Fatal(err)
		}
		buf = f[:0]
	}
	cpu.report()
}

// cpuMeter reports the process's CPU time per operation, client and server
// together: on a busy machine a steadier measure of the work done than the
// wall-clock time, which includes waiting for a CPU.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) cpuMeter { return cpuMeter{b, processCPU()} }

func (m cpuMeter) report() {
	if d := processCPU() - m.start; d > 0 && m.b.N > 0 {
		m.b.ReportMetric(float64(d.Nanoseconds())/float64(m.b.N), "cpu-ns/op")
	}
}

// BenchmarkCallParallel is 64 callers, each with its own connection, on one
// Serve; it reports calls per second.
func BenchmarkCallParallel(b *testing.B) {
	srv := startServer(b, echoHandler(), ServerOptions{})
	const callers = 64
	b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		nc, err := net.Dial("tcp", srv.addr)
		if err != nil {
			b.Error(err)
			return
		}
		c := NewConn(nc, nil, 0)
		defer c.Close()
		req := benchRequest()
		for pb.Next() {
			if _, err := c.Call(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkCodec encodes and decodes the small request and its response.
func BenchmarkCodec(b *testing.B) {
	resp := &Response{Code: CodeOK, Message: Message(CodeOK), Data: benchRequest().Data,
		Meta: Meta{Transaction: "req-000001", Duration: 12 * time.Microsecond, User: "bench"}}
	for _, name := range []string{CodecJSON, CodecJSONGzip} {
		c := mustLookup(b, name)
		for _, m := range []struct {
			name string
			v    any
			into func() any
		}{
			{"request", benchRequest(), func() any { return new(Request) }},
			{"response", resp, func() any { return new(Response) }},
		} {
			enc, err := c.Encode(nil, m.v)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(name+"/encode-"+m.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(enc)))
				buf := make([]byte, 0, 1024)
				for b.Loop() {
					if buf, err = c.Encode(buf[:0], m.v); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/decode-"+m.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(enc)))
				for b.Loop() {
					if err := decode(c, enc, m.into(), DefaultMaxFrame); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
