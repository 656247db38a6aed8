package logging

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
)

// tcpReceiver is a syslog receiver on TCP that reads octet-counted frames
// (RFC 6587) from each connection it accepts.
type tcpReceiver struct {
	tb    testing.TB
	recv  received
	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

// startTCP listens on addr ("127.0.0.1:0" for any port).
func startTCP(tb testing.TB, addr string) *tcpReceiver {
	tb.Helper()
	r := &tcpReceiver{tb: tb}
	r.listen(addr)
	tb.Cleanup(r.stop)
	return r
}

func (r *tcpReceiver) listen(addr string) {
	r.tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.tb.Fatal(err)
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Go(func() { r.read(c) })
		}
	})
}

func (r *tcpReceiver) addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ln.Addr().String()
}

// read reads frames "LEN SP MSG" until the connection ends.
func (r *tcpReceiver) read(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		l, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(l, " "))
		if err != nil || n <= 0 {
			r.tb.Errorf("bad frame length %q", l)
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		r.recv.add(string(msg))
	}
}

// dropConns closes the connections accepted so far, as a receiver that
// restarts does.
func (r *tcpReceiver) dropConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// stop closes the listener and the connections, and waits for the
// goroutines.
func (r *tcpReceiver) stop() {
	r.mu.Lock()
	r.ln.Close()
	r.mu.Unlock()
	r.dropConns()
	r.wg.Wait()
}

// TestSyslogTCP: worker output captured from a pipe reaches a TCP receiver in
// octet-counted frames, every line exactly once, in order.
func TestSyslogTCP(t *testing.T) {
	const lines = 5000
	r := startTCP(t, "127.0.0.1:0")
	s, err := Open(Config{Target: TargetSyslog, SyslogAddr: "tcp://" + r.addr(), Format: FormatText})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSink(t, s) })
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriter(pw)
		for i := range lines {
			fmt.Fprintln(bw, workerText(i))
		}
		bw.Flush()
		pw.Close()
	}()
	if err := s.Capture("web", 4321, StreamStdout, pr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every line", func() bool { return r.recv.len() == lines })
	closeSink(t, s)
	// daemon = 3: info 30.
	if other := checkWorkerLines(t, r.recv.all(), true, "nsfd", 30, "web", 4321, StreamStdout, lines); len(other) != 0 {
		t.Errorf("other messages %+v", other)
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("dropped %d", d)
	}
}

// TestSyslogTCPReconnect: when the receiver closes the connection, the next
// line goes over a new one; while the receiver is down, lines are dropped and
// counted; once it is back, lines flow again. Every line written is either
// received or counted: written == received + dropped.
func TestSyslogTCPReconnect(t *testing.T) {
	// A port of the test's own: while the receiver is down, another test
	// process could be given a freed one, and take the lines that must be
	// dropped, or hold the port the receiver comes back on (CI).
	addr := testport.Reserve(t)
	r := startTCP(t, addr)
	s, err := Open(Config{Target: TargetSyslog, SyslogAddr: "tcp://" + addr, SyslogFacility: "user"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSink(t, s) })
	written := 0
	write := func() {
		s.WorkerLine("echo", 99, StreamStdout, []byte(workerText(written)))
		written++
	}
	workerLines := func() int {
		n := 0
		for _, m := range r.recv.all() {
			if strings.Contains(m, "echo[99] stdout: ") {
				n++
			}
		}
		return n
	}

	for range 100 {
		write()
	}
	waitFor(t, "the first lines", func() bool { return workerLines() == 100 })

	// The receiver closes the connection: the next lines take a new one.
	r.dropConns()
	for range 100 {
		write()
	}
	waitFor(t, "the lines after the receiver closed the connection", func() bool { return workerLines() == 200 })
	if d := s.Dropped(); d != 0 {
		t.Fatalf("dropped %d after a closed connection, want 0", d)
	}

	// The receiver goes away: lines are dropped and counted, and writing
	// never blocks.
	r.stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			write()
		}
	}()
	waitDone(t, "writing while the receiver is down", done)
	waitFor(t, "drops counted", func() bool { return s.Dropped() > 0 })

	// Back on the same port: once the back-off has passed, lines arrive.
	r.listen(addr)
	before := workerLines()
	waitFor(t, "lines after the receiver came back", func() bool {
		write()
		return workerLines() > before
	})
	for range 100 {
		write()
	}
	closeSink(t, s)
	waitFor(t, "the last lines", func() bool { return workerLines()+int(s.Dropped()) == written })

	// Each line at most once, in order; the drops reported.
	got := 0
	last := -1
	var reported uint64
	for _, raw := range r.recv.all() {
		m := parse5424(t, raw)
		text, ok := strings.CutPrefix(m.text, "echo[99] stdout: line ")
		if !ok {
			var n uint64
			if _, err := fmt.Sscanf(m.text, "nsfd: %d log lines dropped: total=", &n); err != nil || m.pri != 12 {
				t.Fatalf("unexpected message %q, want a drop report at user.warning", raw)
			}
			reported += n
			continue
		}
		n, _ := strconv.Atoi(text[:5])
		if n <= last {
			t.Fatalf("line %d after line %d", n, last)
		}
		if m.pri != 14 { // user.info
			t.Fatalf("pri %d, want 14: %q", m.pri, raw)
		}
		last = n
		got++
	}
	dropped := s.Dropped()
	t.Logf("written %d, received %d, dropped %d", written, got, dropped)
	if uint64(got)+dropped != uint64(written) {
		t.Fatalf("received %d + dropped %d != written %d", got, dropped, written)
	}
	if reported != dropped {
		t.Errorf("drop reports sum up to %d, want %d", reported, dropped)
	}
}

// TestSyslogReopen: Reopen connects again.
func TestSyslogReopen(t *testing.T) {
	r := startTCP(t, "127.0.0.1:0")
	s, err := Open(Config{Target: TargetSyslog, SyslogAddr: "tcp://" + r.addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSink(t, s) })
	conns := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.conns)
	}
	waitFor(t, "the connection", func() bool { return conns() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a second connection", func() bool { return conns() == 2 })
	s.WorkerLine("d", 1, StreamStdout, []byte("x"))
	waitFor(t, "the line", func() bool { return r.recv.len() == 1 })
}
