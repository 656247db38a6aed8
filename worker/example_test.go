package worker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nsfd/nsfd/worker"
)

// A complete worker: the main of a program that nsfd starts as
// `command = ../bin/myworker`. Serve takes the listeners nsfd passed, reports
// READY=1 and BUSY=1/BUSY=0, and drains on SIGTERM.
func ExampleServe() {
	err := worker.Serve(context.Background(), worker.HandlerFunc(func(ctx context.Context, c net.Conn) {
		io.Copy(c, c) // echo until the client closes
	}))
	if err != nil {
		log.Fatal(err)
	}
}

// Outside nsfd a Server can serve listeners of its own; here one on
// loopback, stopped by cancelling the context.
func ExampleServer() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &worker.Server{
		Handler: worker.HandlerFunc(func(ctx context.Context, c net.Conn) {
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "hello, %s", line)
		}),
		Concurrency: 4,
		Listeners:   []net.Listener{l},
	}
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(c, "world")
	reply, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(reply)
	c.Close()

	cancel()
	fmt.Println("Serve returned:", <-done)
	// Output:
	// hello, world
	// Serve returned: <nil>
}

// Notify sends one datagram; here the example plays the master's part and
// reads it.
func ExampleNotify() {
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "notify.sock")
	master, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		log.Fatal(err)
	}
	defer master.Close()
	os.Setenv(worker.EnvNotifySocket, path) // nsfd sets it for its workers
	defer os.Unsetenv(worker.EnvNotifySocket)

	if err := worker.Notify(worker.NotifyReady, worker.NotifyStatus+"cache warm"); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, worker.MaxNotifySize)
	n, err := master.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", buf[:n])
	// Output:
	// "READY=1\nSTATUS=cache warm"
}

// A server of your own on the inherited listeners, here net/http's: READY=1
// once it serves, a Load to count its connections for the master, and the
// watchdog the master may ask for.
func ExampleListeners() {
	ls, err := worker.Listeners()
	if err != nil || len(ls) == 0 {
		log.Fatalf("no listeners: %v", err) // not started by nsfd
	}
	load := &worker.Load{Concurrency: 64}
	defer load.Close()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }),
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				load.Begin()
			case http.StateClosed, http.StateHijacked:
				load.End()
			}
		},
	}
	if err := worker.Notify(worker.NotifyReady); err != nil {
		log.Print(err)
	}
	if iv, _ := worker.WatchdogInterval(); iv > 0 {
		go func() {
			for range time.Tick(iv / 2) {
				worker.Notify(worker.NotifyWatchdog)
			}
		}()
	}
	log.Fatal(srv.Serve(ls[0]))
}

// Without NOTIFY_SOCKET (outside nsfd) a Load only counts.
func ExampleLoad() {
	load := &worker.Load{Concurrency: 2}
	for range 3 {
		load.Begin()
		load.End()
	}
	load.Close()
	fmt.Println(load.Requests(), "requests")
	// Output: 3 requests
}
