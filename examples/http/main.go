// Command http is an nsfd worker that serves HTTP with net/http on the
// listeners it inherits: "/" answers "hello from PID".
//
//	command = ../bin/http --concurrency 4
//	port    = 127.0.0.1:8080
//	type    = notify
//
// It sends READY=1 once it serves, WATCHDOG=1 when the master asks for it,
// and drains on SIGTERM (or SIGINT, SIGHUP) with http.Server.Shutdown:
// STOPPING=1, no new connections, requests in progress finish.
//
// Busy and idle are counted in requests, through http.Server.ConnState: a
// connection is busy from the moment a request arrives on it (StateActive)
// until the response is written and it goes back to keep-alive
// (StateIdle) or closes. The worker reports BUSY=1 when --concurrency
// requests are in progress at once and BUSY=0 when one of them finishes,
// so with the default of 1 the master sees every request, as max_requests
// wants. Unlike prefork.Serve, net/http keeps accepting while busy — a
// goroutine per connection is cheap — so BUSY here only tells the master to
// start spare workers; it does not stop this one taking connections.
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

	"github.com/nsfd/nsfd/prefork"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "http:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	concurrency := fs.Int("concurrency", 1, "requests in progress at which the worker reports BUSY=1")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "longest drain; the master's graceful_timeout should be longer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ls, err := prefork.Listeners()
	if err != nil {
		return err
	}
	if len(ls) == 0 {
		return prefork.ErrNoListeners
	}

	busy := &busyCounter{limit: max(*concurrency, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %d\n", os.Getpid())
	})
	srv := &http.Server{Handler: mux, ConnState: busy.connState, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	served := make(chan error, len(ls))
	for _, l := range ls {
		go func() { served <- srv.Serve(l) }()
	}
	notify(prefork.NotifyReady)
	fmt.Fprintf(stdout, "http worker %d ready on %d listener(s)\n", os.Getpid(), len(ls))
	wctx, stopWatchdog := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatchdog()
	go watchdog(wctx)

	select {
	case <-ctx.Done():
	case err = <-served: // a listener failed: drain the others and report it
	}
	notify(prefork.NotifyStopping)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *grace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// busyCounter turns connection states into BUSY=1/BUSY=0.
type busyCounter struct {
	limit  int
	mu     sync.Mutex // held across the count change and its message, so BUSY words alternate
	active map[net.Conn]bool
	n      int
}

func (b *busyCounter) connState(c net.Conn, st http.ConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active == nil {
		b.active = make(map[net.Conn]bool)
	}
	switch st {
	case http.StateActive:
		if b.active[c] {
			return
		}
		b.active[c] = true
		b.n++
		if b.n == b.limit {
			notify(prefork.NotifyBusy)
		}
	case http.StateIdle, http.StateHijacked, http.StateClosed:
		if !b.active[c] {
			return
		}
		delete(b.active, c)
		if b.n == b.limit {
			notify(prefork.NotifyIdle)
		}
		b.n--
	}
}

// watchdog sends WATCHDOG=1 at half the interval the master asked for.
func watchdog(ctx context.Context) {
	interval, err := prefork.WatchdogInterval()
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
			notify(prefork.NotifyWatchdog)
		case <-ctx.Done():
			return
		}
	}
}

func notify(state string) {
	if err := prefork.Notify(state); err != nil {
		log.Printf("http: %v", err)
	}
}
