package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/wire"
	"github.com/nsfd/nsfd/worker"
)

// benchServerEnv makes the test binary the benchmarks' worker: a prefork
// worker serving wire.ServeConn with an echo handler on the listener it
// inherits as fd 3, in a process of its own, as a daemon's worker runs.
const benchServerEnv = "NSFD_CLIENT_BENCH_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(benchServerEnv) == "1" {
		os.Exit(benchServer())
	}
	os.Exit(m.Run())
}

func benchServer() int {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	echo := wire.HandlerFunc(func(ctx context.Context, req *wire.Request) *wire.Response {
		return &wire.Response{Code: wire.CodeOK, Data: req.Data}
	})
	srv := &worker.Server{
		Handler: worker.HandlerFunc(func(ctx context.Context, c net.Conn) {
			wire.ServeConn(ctx, c, echo, wire.ServerOptions{})
		}),
		Concurrency: 256,
		Listeners:   []net.Listener{l},
	}
	if err := srv.Serve(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startBenchServer runs the worker process on a loopback listener and
// returns its address.
func startBenchServer(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	return addr
}

// benchRequest is the small request of wire's benchmarks, the size of a
// key-value put.
func benchRequest() *wire.Request {
	return &wire.Request{
		Command: "put",
		User:    "bench",
		ID:      "req-000001",
		Data:    json.RawMessage(`{"key":"user:1234","value":"a small value of some bytes"}`),
	}
}

// timed runs op b.N times and reports the median and 99th percentile of
// its durations beside the mean (ns/op).
func timed(b *testing.B, op func() error) {
	b.Helper()
	ds := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), "median-ns/op")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), "p99-ns/op")
}

// BenchmarkRoundTrip compares, against one worker process serving
// wire.ServeConn (an echo handler) on loopback TCP:
//
//   - raw: the encoded request frame written and the response frame read on
//     a plain TCP connection, nothing encoded or decoded on the client;
//   - call: Client.Call by name, on a pooled persistent connection: the
//     resolve cache, the endpoint choice, the pool and its liveness peek,
//     encoding the request and decoding the response.
//
// The same bytes cross the wire both ways, and the server does the same
// work; the difference is the client's. Target: call ≤ 1.3 × raw.
func BenchmarkRoundTrip(b *testing.B) {
	addr := startBenchServer(b)
	req := benchRequest()

	b.Run("raw", func(b *testing.B) {
		codec, _ := wire.Lookup(wire.CodecJSON)
		frame, err := wire.AppendFrame(nil, codec, req, 0)
		if err != nil {
			b.Fatal(err)
		}
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		br := bufio.NewReaderSize(nc, 4096)
		buf := make([]byte, 0, 4096)
		var resp []byte
		b.ReportAllocs()
		timed(b, func() error {
			if _, err := nc.Write(frame); err != nil {
				return err
			}
			resp, err = wire.ReadFrame(br, buf, 0)
			buf = resp[:0]
			return err
		})
		b.Logf("request frame %d bytes, response frame %d bytes", len(frame), wire.HeaderSize+len(resp))
	})

	b.Run("call", func(b *testing.B) {
		reg := newRegistry(b)
		register(b, reg, "n1", "bench", "json", addr)
		c := New(reg, Options{LocalNode: "n1"})
		defer c.Close()
		ctx := context.Background()
		b.ReportAllocs()
		timed(b, func() error {
			resp, err := c.Call(ctx, "bench", req)
			if err == nil && resp.Code != wire.CodeOK {
				err = resp.Err()
			}
			return err
		})
	})
}

// BenchmarkCallParallel is Client.Call from 64 goroutines at once, on one
// Client (pooled connections, up to 64), to the same worker process;
// calls/s is the throughput. raw is 64 plain connections doing what
// BenchmarkRoundTrip/raw does, for comparison.
func BenchmarkCallParallel(b *testing.B) {
	addr := startBenchServer(b)
	const callers = 64
	par := (callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	req := benchRequest()

	b.Run("raw", func(b *testing.B) {
		codec, _ := wire.Lookup(wire.CodecJSON)
		frame, _ := wire.AppendFrame(nil, codec, req, 0)
		var mu sync.Mutex
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		b.SetParallelism(par)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			br := bufio.NewReaderSize(nc, 4096)
			buf := make([]byte, 0, 4096)
			for pb.Next() {
				if _, err := nc.Write(frame); err != nil {
					b.Error(err)
					return
				}
				f, err := wire.ReadFrame(br, buf, 0)
				if err != nil {
					b.Error(err)
					return
				}
				buf = f[:0]
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})

	b.Run("call", func(b *testing.B) {
		reg := newRegistry(b)
		register(b, reg, "n1", "bench", "json", addr)
		c := New(reg, Options{LocalNode: "n1", MaxIdle: callers})
		defer c.Close()
		ctx := context.Background()
		b.SetParallelism(par)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Call(ctx, "bench", req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
}
