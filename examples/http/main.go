// Command http is an nsfd worker that serves HTTP with net/http on the
// listeners it inherits: "/" answers "hello from PID".
//
//	command = ../bin/http
//	port    = 127.0.0.1:8080
//	type    = notify
//
// It sends READY=1 once it serves, WATCHDOG=1 when the master asks for it,
// and drains on SIGTERM (or SIGINT, SIGHUP): STOPPING=1, no new connections,
// and every connection already accepted gets its answer (keep-alives off),
// then http.Server.Shutdown.
//
// A worker holds at most --concurrency connections (default
// worker.DefaultConcurrency, 64) and runs on --cores cores (GOMAXPROCS;
// default worker.DefaultCores, one: run about one worker per core): while they
// are all taken it does not accept, so the next connection waits in the
// kernel's backlog for another worker, or for this one's next free slot. It
// reports through a worker.Load: BUSY=1 when it takes its last free slot,
// BUSY=0 (a couple of milliseconds later, unless it fills up again) once
// fewer than three quarters of its slots are taken (worker.DefaultIdleMark),
// and the number of connections, which the master counts towards
// max_requests (clients that keep connections alive make several requests
// count as one).
//
// "/healthz" answers 200 "ok", for `health = http:/healthz`; with
// --sick-file PATH, 503 while that file exists.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nsfd/nsfd/worker"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "http:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	concurrency := fs.Int("concurrency", worker.DefaultConcurrency, "connections served at once; the worker reports BUSY=1 when all are taken")
	cores := fs.Int("cores", 0, "cores the worker's Go code runs on (GOMAXPROCS): 0 is worker.DefaultCores, 1, under nsfd; -1 the Go runtime's choice; GOMAXPROCS in the environment wins")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "longest drain; the master's graceful_timeout should be longer")
	sick := fs.String("sick-file", "", "/healthz answers 503 while this file exists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ls, err := worker.Listeners()
	if err != nil {
		return err
	}
	if len(ls) == 0 {
		return worker.ErrNoListeners
	}
	worker.UseCores(*cores)

	sl := newSlots(max(*concurrency, 1))
	for i, l := range ls {
		ls[i] = &limitListener{Listener: worker.Balance(l), slots: sl}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %d\n", os.Getpid())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if *sick != "" {
			if _, err := os.Stat(*sick); err == nil {
				http.Error(w, "sick: "+*sick+" exists", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	served := make(chan error, len(ls))
	for _, l := range ls {
		go func() { served <- srv.Serve(l) }()
	}
	notify(worker.NotifyReady)
	fmt.Fprintf(stdout, "http worker %d ready on %d listener(s)\n", os.Getpid(), len(ls))
	wctx, stopWatchdog := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatchdog()
	go watchdog(wctx)

	select {
	case <-ctx.Done():
	case err = <-served: // a listener failed: drain the others and report it
	}
	if nerr := sl.load.Stopping(); nerr != nil {
		log.Printf("http: %v", nerr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *grace)
	defer cancel()
	// Stop accepting, then answer every connection already accepted, keep-
	// alives off so that each closes after its response. Shutdown alone would
	// close unanswered a connection whose request arrives after it began
	// (net/http drops a request read once the server is shutting down): the
	// client of a worker replaced after max_requests would see EOF.
	for _, l := range ls {
		l.Close()
	}
	srv.SetKeepAlivesEnabled(false)
	sl.drained(sctx)
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if nerr := sl.load.Close(); nerr != nil {
		log.Printf("http: %v", nerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// slots bounds the connections a worker holds at once and reports
// BUSY=1/BUSY=0 and the count of connections as it fills and frees.
type slots struct {
	free chan struct{} // a token per connection held
	load *worker.Load
}

func newSlots(limit int) *slots {
	return &slots{free: make(chan struct{}, limit), load: &worker.Load{Concurrency: limit}}
}

func (s *slots) taken() { s.load.Begin() }

// drained waits until no connection holds a slot, or ctx ends.
func (s *slots) drained(ctx context.Context) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for len(s.free) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *slots) freed() {
	s.load.End() // before the slot frees, so the next connection's Begin comes after
	<-s.free
}

// limitListener accepts only while the worker has a free slot.
type limitListener struct {
	net.Listener
	slots *slots
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots.free <- struct{}{} // wait for a free slot before taking a connection
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots.free
		return nil, err
	}
	l.slots.taken()
	return &slotConn{Conn: c, release: sync.OnceFunc(l.slots.freed)}, nil
}

// slotConn frees its slot when closed.
type slotConn struct {
	net.Conn
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// watchdog sends WATCHDOG=1 at half the interval the master asked for.
func watchdog(ctx context.Context) {
	interval, err := worker.WatchdogInterval()
	if err != nil {
		log.Printf("http: watchdog off: %v", err)
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			notify(worker.NotifyWatchdog)
		case <-ctx.Done():
			return
		}
	}
}

func notify(state string) {
	if err := worker.Notify(state); err != nil {
		log.Printf("http: %v", err)
	}
}
