package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// wtLineHandler echoes lines. The line "drained?" is answered with
// "drained" once the handler's context is cancelled.
var wtLineHandler = HandlerFunc(func(ctx context.Context, c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "drained?\n" {
			<-ctx.Done()
			line = "drained\n"
		}
		if _, err := io.WriteString(c, line); err != nil {
			return
		}
	}
})

// helperWorkerServe is a worker built on Serve; WT_CONCURRENCY sets its
// concurrency (unset: 1, so that one connection fills it).
func helperWorkerServe() {
	n, err := strconv.Atoi(os.Getenv("WT_CONCURRENCY"))
	if err != nil {
		n = 1
	}
	err = (&Server{Handler: wtLineHandler, Concurrency: n}).Serve(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	fmt.Println("serve returned")
}

// wtConn is a client connection with a line reader.
type wtConn struct {
	net.Conn
	r *bufio.Reader
}

func wtDial(tb testing.TB, network, addr string) *wtConn {
	tb.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &wtConn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip sends line and fails unless the same line comes back.
func (c *wtConn) roundTrip(tb testing.TB, line string) {
	tb.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		tb.Fatal(err)
	}
	got, err := c.r.ReadString('\n')
	if err != nil || got != line+"\n" {
		tb.Fatalf("sent %q, got %q, %v", line, got, err)
	}
}

// unanswered sends line and fails if an answer comes within d: the
// connection waits in the accept queue.
func (c *wtConn) unanswered(tb testing.TB, line string, d time.Duration) {
	tb.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		tb.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(d))
	if got, err := c.r.ReadString('\n'); !errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("a connection beyond the concurrency limit was served: %q, %v", got, err)
	}
}

func (c *wtConn) send(tb testing.TB, line string) {
	tb.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		tb.Fatal(err)
	}
}

func (c *wtConn) answer(tb testing.TB, want string) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := c.r.ReadString('\n'); err != nil || got != want+"\n" {
		tb.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func wtTCPListener(tb testing.TB) *net.TCPListener {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}

func TestWorkerServeNotifySequence(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			l := wtTCPListener(t)
			notes := wtListenNotify(t)
			p := wtStartHelper(t, "worker-serve", []*os.File{wtInheritable(t, l)}, true,
				"LISTEN_FDS=1", "NOTIFY_SOCKET="+notes.path)
			notes.expect(t, NotifyReady)
			for i := range 2 {
				c := wtDial(t, "tcp", l.Addr().String())
				c.roundTrip(t, fmt.Sprint("hello ", i))
				c.roundTrip(t, "again\r")
				notes.expect(t, wtBusy(i+1))
				c.Close()
				notes.expect(t, wtIdle(i+1)) // after the idle grace
			}
			p.signal(t, sig)
			notes.expect(t, wtStopping(2))
			if got := p.line(t); got != "serve returned" {
				t.Fatalf("worker printed %q", got)
			}
			p.wait(t)
			notes.expectNone(t)

			// The worker closed only its copy of the listener: the socket still
			// queues connections, for the master and the next worker.
			c := wtDial(t, "tcp", l.Addr().String())
			l.SetDeadline(time.Now().Add(5 * time.Second))
			sc, err := l.Accept()
			if err != nil {
				t.Fatalf("shared listener after the worker left: %v", err)
			}
			sc.Close()
			c.Close()
		})
	}
}

func TestWorkerServeDrainFinishesInFlight(t *testing.T) {
	l := wtTCPListener(t)
	notes := wtListenNotify(t)
	p := wtStartHelper(t, "worker-serve", []*os.File{wtInheritable(t, l)}, false,
		"LISTEN_FDS=1", "NOTIFY_SOCKET="+notes.path)
	notes.expect(t, NotifyReady)
	c := wtDial(t, "tcp", l.Addr().String())
	c.roundTrip(t, "before")
	notes.expect(t, wtBusy(1))

	p.signal(t, syscall.SIGTERM)
	notes.expect(t, wtStopping(1))
	c.send(t, "drained?")
	c.answer(t, "drained")  // the handler sees its context cancelled ...
	c.roundTrip(t, "after") // ... and still serves the request in progress
	c.Close()
	notes.expect(t, wtIdle(1)) // after the grace, or at once as Serve returns
	p.wait(t)
	notes.expectNone(t)
}

func TestWorkerServeWatchdog(t *testing.T) {
	l := wtTCPListener(t)
	notes := wtListenNotify(t)
	p := wtStartHelper(t, "worker-serve", []*os.File{wtInheritable(t, l)}, true,
		"LISTEN_FDS=1", "NOTIFY_SOCKET="+notes.path, "WATCHDOG_USEC=20000")
	notes.expect(t, NotifyReady, NotifyWatchdog, NotifyWatchdog)
	p.signal(t, syscall.SIGTERM)
	notes.expect(t, wtStopping(0))
	p.wait(t)
}

// wtServe runs s.Serve in the background with NOTIFY_SOCKET set; the
// returned func cancels its context and waits for Serve's result.
func wtServe(t *testing.T, s *Server) (*wtNotes, func() error) {
	t.Helper()
	notes := wtListenNotify(t)
	t.Setenv(EnvNotifySocket, notes.path)
	t.Setenv(EnvWatchdogUSec, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
			return nil
		}
	})
	t.Cleanup(func() { stop() })
	notes.expect(t, NotifyReady)
	return notes, stop
}

// wtCountingListener tracks how many goroutines are inside Accept.
type wtCountingListener struct {
	net.Listener
	in atomic.Int32
}

func (l *wtCountingListener) Accept() (net.Conn, error) {
	l.in.Add(1)
	defer l.in.Add(-1)
	return l.Listener.Accept()
}

func TestWorkerServeConcurrencyLimit(t *testing.T) {
	l := &wtCountingListener{Listener: wtTCPListener(t)}
	addr := l.Addr().String()
	// IdleGrace < 0: every drop below the limit is reported at once.
	notes, stop := wtServe(t, &Server{Handler: wtLineHandler, Concurrency: 2, IdleGrace: -1, Listeners: []net.Listener{l}})

	a := wtDial(t, "tcp", addr)
	a.roundTrip(t, "a")
	notes.expectNone(t) // one of two slots taken: not busy yet
	b := wtDial(t, "tcp", addr)
	b.roundTrip(t, "b")
	notes.expect(t, wtBusy(2))
	if n := l.in.Load(); n != 0 {
		t.Fatalf("%d goroutines in Accept while at the concurrency limit", n)
	}
	c := wtDial(t, "tcp", addr)
	c.unanswered(t, "c", 100*time.Millisecond)
	a.Close()
	notes.expect(t, wtIdle(2), wtBusy(3)) // c took a's slot
	c.answer(t, "c")
	b.Close()
	notes.expect(t, wtIdle(3))
	c.Close()

	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	notes.expect(t, wtStopping(3))
}

func TestWorkerServeContextDrain(t *testing.T) {
	l := wtTCPListener(t)
	notes, stop := wtServe(t, &Server{Handler: wtLineHandler, Concurrency: 1, Listeners: []net.Listener{l}})
	c := wtDial(t, "tcp", l.Addr().String())
	c.roundTrip(t, "x")
	notes.expect(t, wtBusy(1))

	done := make(chan error, 1)
	go func() { done <- stop() }()
	notes.expect(t, wtStopping(1))
	c.send(t, "drained?")
	c.answer(t, "drained")
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a connection in flight: %v", err)
	default:
	}
	c.Close()
	notes.expect(t, wtIdle(1))
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// With several listeners, a worker at its limit accepts on none of them.
func TestWorkerServeListenersShareSlots(t *testing.T) {
	tl := wtTCPListener(t)
	ul, err := net.Listen("unix", filepath.Join(wtSockDir(t), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	notes, stop := wtServe(t, &Server{Handler: wtLineHandler, Concurrency: 1, IdleGrace: -1, Listeners: []net.Listener{tl, ul}})

	a := wtDial(t, "unix", ul.Addr().String())
	a.roundTrip(t, "a")
	notes.expect(t, wtBusy(1))
	b := wtDial(t, "tcp", tl.Addr().String())
	b.unanswered(t, "b", 100*time.Millisecond)
	a.Close()
	notes.expect(t, wtIdle(1), wtBusy(2))
	b.answer(t, "b")
	b.Close()
	notes.expect(t, wtIdle(2))
	for i := range 3 {
		c := wtDial(t, "unix", ul.Addr().String())
		c.roundTrip(t, "c")
		c.Close()
		notes.expect(t, wtBusy(3+i), wtIdle(3+i))
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	notes.expect(t, wtStopping(5))
}

func TestWorkerServePackets(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var handlerDone atomic.Bool
	_, stop := wtServe(t, &Server{
		PacketConns: []net.PacketConn{pc},
		PacketHandler: func(ctx context.Context, pc net.PacketConn) {
			defer handlerDone.Store(true)
			buf := make([]byte, 1500)
			for {
				n, addr, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], addr)
			}
		},
	})
	c := wtDial(t, "udp", pc.LocalAddr().String())
	c.roundTrip(t, "ping")
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if !handlerDone.Load() {
		t.Fatal("Serve returned before the packet handler")
	}
}

func TestWorkerServeNoListeners(t *testing.T) {
	if os.Getenv(EnvListenFDs) != "" {
		t.Skip("the test process itself inherited listeners")
	}
	err := Serve(context.Background(), wtLineHandler)
	if !errors.Is(err, ErrNoListeners) {
		t.Fatalf("Serve without listeners: %v, want ErrNoListeners", err)
	}
	if err := (&Server{}).Serve(context.Background()); err == nil {
		t.Fatal("Serve without a handler succeeded")
	}
}

// wtFlakyListener fails Accept with the given errors, in order.
type wtFlakyListener struct {
	net.Listener
	errs []error
}

func (l *wtFlakyListener) Accept() (net.Conn, error) {
	if len(l.errs) == 0 {
		return l.Listener.Accept()
	}
	err := l.errs[0]
	l.errs = l.errs[1:]
	return nil, err
}

func TestWorkerServeAcceptErrors(t *testing.T) {
	boom := errors.New("boom")
	l := &wtFlakyListener{Listener: wtTCPListener(t), errs: []error{
		&net.OpError{Op: "accept", Err: os.NewSyscallError("accept", syscall.EMFILE)},
		&net.OpError{Op: "accept", Err: os.NewSyscallError("accept", syscall.ECONNABORTED)},
		boom,
	}}
	notes := wtListenNotify(t)
	t.Setenv(EnvNotifySocket, notes.path)
	s := &Server{Handler: wtLineHandler, Concurrency: 1, Listeners: []net.Listener{l}, Logger: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("Serve: %v, want boom after retrying the temporary errors", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not give up on a permanent accept error")
	}
	notes.expect(t, NotifyReady, wtStopping(0))
}
