// Command echo is an nsfd worker that echoes lines, the "hello world" of a
// prefork daemon. Run it under nsfd (etc/echo.ini):
//
//	command = ../bin/echo --greeting hi
//	port    = 127.0.0.1:7001
//	type    = notify
//
// Each line a client sends comes back unchanged; the greeting, if set, is
// sent once when a client connects. Datagram listeners (port = …/udp) echo
// each datagram back to its sender. When the worker drains (SIGTERM), it
// answers the lines it has already read and closes the connection; a client
// that has not sent its line yet gets a second to do so.
//
// Flags:
//
//	--greeting TEXT     sent as a line on connect (default: none)
//	--concurrency N     connections served at once (default worker.DefaultConcurrency, 64;
//	                    1 is the Net::Server::PreFork model)
//	--cores N           cores its Go code runs on, GOMAXPROCS (default worker.DefaultCores, 1:
//	                    a worker per core, under nsfd; -1 the Go runtime's choice; GOMAXPROCS in
//	                    the environment wins)
//	--slow DURATION     wait this long before each reply (to try the spare-server policy)
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/nsfd/nsfd/worker"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	greeting := fs.String("greeting", "", "line sent to each client on connect")
	concurrency := fs.Int("concurrency", worker.DefaultConcurrency, "connections served at once")
	cores := fs.Int("cores", 0, "cores the worker's Go code runs on (GOMAXPROCS): 0 is worker.DefaultCores, 1, under nsfd; -1 the Go runtime's choice; GOMAXPROCS in the environment wins")
	slow := fs.Duration("slow", 0, "delay before each reply")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	e := &echo{greeting: *greeting, slow: *slow}
	srv := &worker.Server{Handler: e, PacketHandler: e.servePackets, Concurrency: *concurrency, Cores: *cores}
	fmt.Fprintf(stdout, "echo worker %d ready\n", os.Getpid())
	return srv.Serve(ctx)
}

// echo is the worker's handler.
type echo struct {
	greeting string
	slow     time.Duration
}

var _ worker.Handler = (*echo)(nil)

// ServeConn echoes lines until the client leaves or the worker drains.
func (e *echo) ServeConn(ctx context.Context, c net.Conn) {
	// Draining: a client gets drainGrace to send the line it is sending (a
	// connection accepted just before the drain has not sent it yet); the
	// answer to the line in progress is written, then the connection closes.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now().Add(drainGrace)) })
	defer stop()
	if e.greeting != "" {
		if _, err := io.WriteString(c, e.greeting+"\n"); err != nil {
			return
		}
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return // a partial line cut off by draining is dropped
		}
		e.wait()
		if _, werr := io.WriteString(c, line); werr != nil || err != nil {
			return
		}
		if ctx.Err() != nil && r.Buffered() == 0 {
			return // draining, and every line the client sent is answered
		}
	}
}

// drainGrace is how long a draining worker still waits for a client's line.
const drainGrace = time.Second

// servePackets echoes each datagram to its sender until Serve stops it.
func (e *echo) servePackets(ctx context.Context, pc net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				log.Printf("echo: read %s: %v", pc.LocalAddr(), err)
			}
			return
		}
		e.wait()
		if _, err := pc.WriteTo(buf[:n], addr); err != nil {
			log.Printf("echo: reply to %s: %v", addr, err)
		}
	}
}

func (e *echo) wait() {
	if e.slow > 0 {
		time.Sleep(e.slow)
	}
}
