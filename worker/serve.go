package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// DefaultConcurrency is how many connections a worker serves at once when
// Server.Concurrency (or Load.Concurrency) is 0: 64.
//
// A Go worker that serves one connection at a time spends most of its CPU
// waking an idle runtime for every request (scheduler, sysmon, netpoller):
// measured with examples/echo on 2 cores (issue 18), one connection per
// process served 0.54× what Net::Server::PreFork serves, 2 processes of 16
// connections each 0.96×. Goroutines cost a few kilobytes each, so a
// worker keeps a core busy with a few dozen connections in flight; 64
// leaves room for handlers that wait on a disk or another daemon without
// letting one worker hoard a listener's whole backlog. Run about one Go
// worker per core (min_servers = cores; each runs on one, DefaultCores)
// and let the master add more as they saturate. For the
// one-connection-per-process model (a handler that is not safe to run
// concurrently) set Concurrency to 1.
const DefaultConcurrency = 64

// Handler serves the connections a worker accepts.
type Handler interface {
	// ServeConn serves c and returns when it is done with it; Serve closes c
	// afterwards. ctx is cancelled when the worker drains (SIGTERM, or the
	// context given to Serve is done): finish the request in progress, then
	// return. Serve waits for every ServeConn to return.
	ServeConn(ctx context.Context, c net.Conn)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, c net.Conn)

// ServeConn calls f(ctx, c).
func (f HandlerFunc) ServeConn(ctx context.Context, c net.Conn) { f(ctx, c) }

var _ Handler = HandlerFunc(nil)

// Server is the worker side of a pre-forked daemon: it serves the listeners it
// inherited from the master and reports to the master on NOTIFY_SOCKET.
// The zero value with a Handler set is ready to use.
type Server struct {
	// Handler serves each accepted stream connection.
	Handler Handler

	// PacketHandler, if set, runs once for each datagram socket, in its own
	// goroutine, and should read from pc until reading fails. When the
	// worker drains, Serve cancels ctx and sets pc's read deadline to now;
	// it closes pc when PacketHandler returns. Datagrams do not count as
	// requests: Serve reports busy and idle for stream connections only.
	PacketHandler func(ctx context.Context, pc net.PacketConn)

	// Concurrency is how many connections the worker serves at once;
	// 0 means DefaultConcurrency. While it serves that many, the worker
	// does not call accept: a new connection is never taken in only to
	// wait for a slot, it stays in the kernel's listen backlog, where
	// another worker of the pool (they share the socket) accepts it, or
	// this one as soon as a connection ends. It reports BUSY=1 when it
	// reaches the limit and BUSY=0 when it drops below IdleMark again, so
	// the master's spare-server policy sees the worker as one server of
	// capacity Concurrency, and counts every connection as a request
	// (REQUESTS=n), which is what the master holds against max_requests.
	Concurrency int

	// IdleMark is the low-water mark of the busy/idle report: once busy,
	// the worker reports BUSY=0 only when fewer than IdleMark connections
	// are in progress. 0 means DefaultIdleMark(Concurrency). See Load.
	IdleMark int

	// IdleGrace is how long the worker waits, once it has dropped below
	// Concurrency, before it reports BUSY=0: a connection that fills it up
	// again within the grace cancels the report, so a run of back-to-back
	// connections costs the master two datagrams, not two per connection.
	// 0 means DefaultIdleGrace; a negative value reports BUSY=0 at once.
	// See Load.
	IdleGrace time.Duration

	// Cores is how many cores the worker's Go code runs on at once
	// (runtime.GOMAXPROCS), set by Serve when it serves inherited sockets:
	// 0 means DefaultCores (one: a pool runs about one worker per core) in
	// a worker an nsfd master started, and the runtime's choice elsewhere;
	// a negative value keeps the runtime's choice; a GOMAXPROCS
	// environment variable wins. A program that sets GOMAXPROCS itself
	// (runtime.GOMAXPROCS, automaxprocs) sets Cores to -1, or Serve's
	// default replaces its choice. See UseCores.
	Cores int

	// Listeners and PacketConns, when either is non-nil, are served instead
	// of the inherited sockets (Listeners() and PacketConns()), and Cores
	// is not applied: such a Serve is not a worker of a pool. Serve closes
	// them when it returns.
	Listeners   []net.Listener
	PacketConns []net.PacketConn

	// Logger receives errors Serve does not return: failed notify
	// messages, accept errors it retries. nil: slog.Default(), which
	// writes to stderr, which the master logs.
	Logger *slog.Logger

	// TLS, if set, is served on every stream listener: each connection's
	// handshake is done (within HandshakeTimeout) before the Handler gets
	// it, as a *tls.Conn. nil means what the master asks for in the
	// environment (TLSConfig): a daemon with tls_cert serves TLS whatever
	// its code says. Datagram sockets are never wrapped.
	TLS *tls.Config
}

// Serve serves the worker's inherited listeners with h until SIGTERM,
// SIGINT or SIGHUP, or until ctx is done. It is (&Server{Handler: h}).Serve(ctx).
func Serve(ctx context.Context, h Handler) error {
	return (&Server{Handler: h}).Serve(ctx)
}

// Serve accepts on every stream listener and runs PacketHandler on every
// datagram socket, then sends READY=1; it returns ErrNoListeners if there is
// nothing to serve. While serving it reports BUSY=1/BUSY=0 and the count of
// connections, REQUESTS=n (see Concurrency, IdleGrace and Load), and, when
// the master asks for a watchdog (WATCHDOG_USEC), sends WATCHDOG=1 at half
// the interval.
//
// On SIGTERM, SIGINT or SIGHUP, or when ctx is done, Serve drains: it stops
// accepting (closing only this process's copies of the sockets), sends
// STOPPING=1 with the count, cancels the context its handlers got, waits for
// every handler to return, sends what it still deferred, and returns nil. An accept error that retrying cannot cure also
// drains, and Serve returns that error. Serve installs its own signal
// handling for these signals until it returns. A Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	if s.Handler == nil && s.PacketHandler == nil {
		return errors.New("worker: Server has neither Handler nor PacketHandler")
	}
	ls, pcs, err := s.sockets()
	if err != nil {
		return err
	}
	if s.Handler == nil {
		closeWorkerSockets(ls)
		ls = nil
	}
	if s.PacketHandler == nil {
		closeWorkerSockets(pcs)
		pcs = nil
	}
	if len(ls) == 0 && len(pcs) == 0 {
		return ErrNoListeners
	}
	if s.Listeners == nil && s.PacketConns == nil {
		UseCores(s.Cores)
	}
	tlsConfig := s.TLS
	if tlsConfig == nil {
		if tlsConfig, err = TLSConfig(); err != nil {
			closeWorkerSockets(ls)
			closeWorkerSockets(pcs)
			return err
		}
	}

	sigCtx, stopSignals := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stopSignals()
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	r := &serveRun{
		handler: s.Handler,
		limit:   s.Concurrency,
		stop:    make(chan struct{}),
		hctx:    hctx,
		logger:  s.Logger,
		tls:     tlsConfig,
	}
	if r.limit <= 0 {
		r.limit = DefaultConcurrency
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	r.slots = make(chan struct{}, r.limit)
	r.load = &Load{Concurrency: r.limit, IdleMark: s.IdleMark, IdleGrace: s.IdleGrace, Logger: r.logger}

	var loops sync.WaitGroup
	failed := make(chan error, len(ls))
	var nbs []*nbListener
	onBoard := theBoard().join()
	for _, l := range ls {
		var nb *nbListener
		shared := len(ls) > 1
		if shared || onBoard {
			// Holding a slot while waiting in one listener's Accept would
			// keep the others from accepting: a shared slot waits for a
			// pending connection first, then accepts without blocking. A
			// worker on the load board waits for one too, once it is busy,
			// to look at its peers before it accepts (Balance).
			nb = newNBListener(l)
			if nb != nil {
				nbs = append(nbs, nb)
			}
		}
		loops.Go(func() {
			if err := r.acceptLoop(l, nb, shared); err != nil {
				failed <- err
			}
		})
	}
	for _, pc := range pcs {
		r.conns.Go(func() {
			defer pc.Close()
			s.PacketHandler(hctx, pc)
		})
	}
	r.notify(NotifyReady)
	stopWatchdog := r.startWatchdog()
	defer stopWatchdog()

	var serveErr error
	select {
	case <-sigCtx.Done():
	case serveErr = <-failed:
	}

	close(r.stop)
	closeWorkerSockets(ls)
	closeWorkerSockets(nbs)
	if err := r.load.Stopping(); err != nil {
		r.logger.Warn("worker: report to the master failed", "error", err)
	}
	cancelHandlers()
	for _, pc := range pcs {
		pc.SetReadDeadline(time.Now()) // after the cancel: a handler's failed read finds ctx done
	}
	loops.Wait()
	r.conns.Wait()
	if err := r.load.Close(); err != nil {
		r.logger.Warn("worker: report to the master failed", "error", err)
	}
	return serveErr
}

// sockets returns what Serve serves: the Server's own sockets, or else the
// inherited ones.
func (s *Server) sockets() ([]net.Listener, []net.PacketConn, error) {
	if s.Listeners != nil || s.PacketConns != nil {
		return append([]net.Listener(nil), s.Listeners...), append([]net.PacketConn(nil), s.PacketConns...), nil
	}
	ls, err := Listeners()
	if err != nil {
		return nil, nil, err
	}
	pcs, err := PacketConns()
	if err != nil {
		closeWorkerSockets(ls)
		return nil, nil, err
	}
	return ls, pcs, nil
}

// serveRun is one run of Server.Serve.
type serveRun struct {
	handler Handler
	limit   int
	slots   chan struct{} // one token per connection being served
	stop    chan struct{} // closed when Serve stops accepting
	hctx    context.Context
	conns   sync.WaitGroup // handlers
	logger  *slog.Logger
	load    *Load       // counts the connections and reports BUSY and REQUESTS
	tls     *tls.Config // nil: plain text
}

func (r *serveRun) notify(state string) {
	if err := Notify(state); err != nil {
		r.logger.Warn("worker: report to the master failed", "error", err)
	}
}

func (r *serveRun) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// acquire takes a connection slot, waiting while the worker is at its
// limit; it returns false when Serve stops accepting.
func (r *serveRun) acquire() bool {
	if r.stopping() {
		return false
	}
	select {
	case r.slots <- struct{}{}:
		return true
	case <-r.stop:
		return false
	}
}

func (r *serveRun) release() { <-r.slots }

// acceptLoop accepts on l until Serve stops, never while all slots are
// taken. Without nb it takes a slot, then waits in Accept. With nb, when
// the slots are shared with other listeners or the worker is busy on the
// load board, it waits for a pending connection first, takes a slot,
// leaves the connection to a less loaded peer for BalanceWait if the
// board names one (Balance), then accepts: without blocking if the slots
// are shared, else with l's own Accept.
func (r *serveRun) acceptLoop(l net.Listener, nb *nbListener, shared bool) error {
	board := theBoard()
	var backoff time.Duration
	for {
		look := nb != nil && (shared || board.busy())
		if look {
			board.wait(true)
			err := nb.waitPending()
			board.wait(false)
			if err != nil {
				if r.stopping() {
					return nil
				}
				return fmt.Errorf("accept on %s: %w", l.Addr(), err)
			}
		}
		if !r.acquire() {
			return nil
		}
		if look && board.yield() && !r.leave(nb) {
			r.release()
			continue // a less loaded peer took it
		}
		var (
			c   net.Conn
			err error
		)
		if nb != nil && shared {
			c, err = nb.acceptNow()
		} else {
			board.wait(true)
			c, err = l.Accept()
			board.wait(false)
		}
		if err != nil {
			r.release()
			switch {
			case errors.Is(err, net.ErrClosed) || r.stopping():
				return nil
			case nb != nil && errors.Is(err, syscall.EAGAIN):
				continue // another worker took it
			case !acceptRetryable(err):
				return fmt.Errorf("accept on %s: %w", l.Addr(), err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.logger.Warn("worker: accept failed; retrying", "addr", l.Addr().String(), "error", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-r.stop:
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		r.serveConn(c)
	}
}

// leave leaves the pending connection of nb to a less loaded peer for
// BalanceWait and reports whether it is still pending then.
func (r *serveRun) leave(nb *nbListener) bool {
	t := time.NewTimer(BalanceWait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.stop:
		return false
	}
	return nb.pending()
}

// serveConn runs the handler for c, which holds a slot, and counts it
// with r.load: BUSY=1 if c takes the last slot, BUSY=0 (deferred) once
// the connections in progress drop below the idle mark.
func (r *serveRun) serveConn(c net.Conn) {
	r.load.Begin()
	r.conns.Go(func() {
		defer func() {
			r.load.End() // before the slot frees: the next connection's Begin comes after, and cancels a deferred BUSY=0
			r.release()
		}()
		defer func() { c.Close() }() // the *tls.Conn once there is one: it says goodbye
		if r.tls != nil {
			tc := tls.Server(c, r.tls)
			hctx, cancel := context.WithTimeout(r.hctx, HandshakeTimeout)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				// A plain-text client, a wrong certificate, a port
				// scanner: common enough not to be a warning.
				r.logger.Debug("worker: tls handshake failed", "remote", c.RemoteAddr().String(), "error", err)
				return
			}
			c = tc
		}
		r.handler.ServeConn(r.hctx, c)
	})
}

// acceptRetryable reports whether an accept error may pass: resource
// shortages, an aborted connection, a timeout.
func acceptRetryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// startWatchdog sends WATCHDOG=1 at half the interval the master asked
// for, if it asked; the returned func stops it and waits for it.
func (r *serveRun) startWatchdog() func() {
	interval, err := WatchdogInterval()
	if err != nil {
		r.logger.Warn("worker: watchdog off", "error", err)
	}
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(interval/2, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.notify(NotifyWatchdog)
			case <-done:
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
