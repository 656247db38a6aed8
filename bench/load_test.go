package bench

// The load generator: closed loop, one goroutine per client connection, each
// sending a request and waiting for its reply before the next one, for a
// fixed time. Raw sockets and a minimal HTTP/1.1 client keep the client's own
// cost small and the same for both sides.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// workload is what one request is.
type workload int

const (
	// echoKeepAlive: each client holds one connection and sends a line,
	// then reads it back. With one connection per worker this is the data
	// path alone: the worker reports BUSY=1 once, when it accepts.
	echoKeepAlive workload = iota
	// echoConnect: a new connection per request (connect, line, reply,
	// close), Net::Server's one-request-per-connection model: every request
	// is an accept in a worker and a BUSY=1/BUSY=0 pair to the master.
	echoConnect
	// httpKeepAlive: each client holds one HTTP/1.1 connection and sends
	// GET / on it, request after request.
	httpKeepAlive
	// httpConnect: a new connection per GET /, closed once the response is
	// read: an accept and one request towards max_requests each (with
	// --concurrency 1, a BUSY=1/BUSY=0 pair too).
	httpConnect
)

func (w workload) String() string {
	switch w {
	case echoKeepAlive:
		return "echo keep-alive"
	case echoConnect:
		return "echo connect-per-request"
	case httpKeepAlive:
		return "http keep-alive"
	case httpConnect:
		return "http connect-per-request"
	}
	return "workload(" + strconv.Itoa(int(w)) + ")"
}

var (
	echoLine    = []byte("nsfd bench 0123456789abcdef\n")
	httpRequest = []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: nsfd-bench\r\n\r\n")
)

const (
	dialTimeout = 2 * time.Second
	ioGrace     = 2 * time.Second // past the end of a run, a read or write fails
)

// loadResult is one run of the load generator.
type loadResult struct {
	Requests int           // answered correctly
	Errors   int           // failed on a fresh connection
	Redials  int           // failed on a reused connection, then retried on a new one
	Elapsed  time.Duration // from the start until the last client stopped
	P50, P99 time.Duration // request latency, connect included where there is one
	FirstErr string        // the first error a client saw, if any
}

// RPS returns the requests answered per second.
func (r loadResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// generateLoad runs clients closed-loop clients against addr for d and
// returns what they saw. Every network call has a deadline: it returns at
// most a little over d + ioGrace after it starts.
func generateLoad(ctx context.Context, w workload, addr string, clients int, d time.Duration) loadResult {
	start := time.Now()
	end := start.Add(d)
	results := make([]clientResult, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { results[i] = runClient(ctx, w, addr, end) })
	}
	wg.Wait()
	r := loadResult{Elapsed: time.Since(start)}
	var lat []time.Duration
	for _, cr := range results {
		r.Requests += len(cr.lat)
		r.Errors += cr.errors
		r.Redials += cr.redials
		r.FirstErr = cmp.Or(r.FirstErr, cr.firstErr)
		lat = append(lat, cr.lat...)
	}
	slices.Sort(lat)
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r
}

// percentile returns the q-th quantile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

type clientResult struct {
	lat      []time.Duration
	errors   int
	redials  int
	firstErr string
}

func runClient(ctx context.Context, w workload, addr string, end time.Time) clientResult {
	cl := &client{kind: w, addr: addr, end: end}
	defer cl.close()
	res := clientResult{lat: make([]time.Duration, 0, 1<<14)}
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		reused := cl.conn != nil
		err := cl.request()
		if err != nil && reused {
			// A keep-alive connection the server closed (a worker
			// replaced after max_requests): retry once on a new one, as an
			// HTTP client does for an idempotent request.
			res.redials++
			cl.close()
			err = cl.request()
		}
		if err != nil {
			if res.errors == 0 {
				res.firstErr = err.Error()
			}
			res.errors++
			cl.close()
			if rest := time.Until(end); rest > 0 {
				time.Sleep(min(time.Millisecond, rest)) // do not spin on a refusing server
			}
			continue
		}
		res.lat = append(res.lat, time.Since(t0))
	}
	return res
}

// client is one connection of the load generator.
type client struct {
	kind workload
	addr string
	end  time.Time
	conn net.Conn
	r    *bufio.Reader
}

func (c *client) request() error {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return err
		}
	}
	switch c.kind {
	case echoKeepAlive:
		return c.echo()
	case echoConnect:
		err := c.echo()
		c.close()
		return err
	case httpKeepAlive, httpConnect:
		_, err := c.conn.Write(httpRequest)
		if err == nil {
			err = readHTTPResponse(c.r)
		}
		if c.kind == httpConnect {
			c.close()
		}
		return err
	}
	return fmt.Errorf("unknown workload %d", c.kind)
}

func (c *client) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, dialTimeout)
	if err != nil {
		return err
	}
	if c.kind == echoConnect || c.kind == httpConnect {
		// Reset on close, leaving no TIME_WAIT: a run makes tens of
		// thousands of connections, more than there are ephemeral ports.
		if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
			conn.Close()
			return err
		}
	}
	if err := conn.SetDeadline(c.end.Add(ioGrace)); err != nil {
		conn.Close()
		return err
	}
	c.conn = conn
	if c.r == nil {
		c.r = bufio.NewReaderSize(conn, 4096)
	} else {
		c.r.Reset(conn)
	}
	return nil
}

func (c *client) echo() error {
	if _, err := c.conn.Write(echoLine); err != nil {
		return err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.Equal(line, echoLine) {
		return fmt.Errorf("echo: got %q", line)
	}
	return nil
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

var errBadResponse = errors.New("bad HTTP response")

// readHTTPResponse reads one response to GET: a 200 status, headers, and a
// body of Content-Length bytes (all the worker sends; chunked bodies are
// refused).
func readHTTPResponse(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("%w: status %q", errBadResponse, bytes.TrimSpace(line))
	}
	length := -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return fmt.Errorf("%w: header %q", errBadResponse, line)
		}
		if bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil || length < 0 {
				return fmt.Errorf("%w: Content-Length %q", errBadResponse, v)
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("%w: no Content-Length", errBadResponse)
	}
	_, err = r.Discard(length)
	return err
}
