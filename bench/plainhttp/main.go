// Command plainhttp is what a Go user runs without nsfd: one net/http
// process, every core, no worker library. BenchmarkDataPath serves it
// beside examples/http under nsfd, with the same handler ("hello from
// PID"), on a socket the benchmark binds and passes as fd 3 (LISTEN_FDS=1),
// so that both sides differ only in how the connections are served.
//
//	LISTEN_FDS=1 plainhttp      # prints "plainhttp PID ready"
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "plainhttp:", err)
		os.Exit(1)
	}
}

func run() error {
	f := os.NewFile(3, "listener")
	if f == nil {
		return fmt.Errorf("no listener on fd 3")
	}
	l, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("fd 3: %w", err)
	}
	f.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %d\n", os.Getpid())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("plainhttp %d ready\n", os.Getpid())
	return srv.Serve(l)
}
