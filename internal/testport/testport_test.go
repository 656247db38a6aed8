//go:build linux

package testport

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestReserve: the address can be listened on, again and again; with no
// listener a connection is refused; and the kernel gives the port to no
// listener on port 0 meanwhile.
func TestReserve(t *testing.T) {
	addr := Reserve(t)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a reserved port nothing listens on: %v, want connection refused", err)
	}
	for i := range 2 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen %d on the reserved address: %v", i, err)
		}
		if _, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("a second listener beside a live one: %v, want address in use", err)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial the listener: %v", err)
		}
		c.Close()
		l.Close()
		if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial after the listener closed: %v, want connection refused", err)
		}
	}
	// The kernel never gives the reserved port to a listener on port 0 (a
	// freed one it gives about once in 28,000 binds with Linux's default
	// range: this loop sees a reservation that does not hold about half
	// the time).
	port := func(a string) string { _, p, _ := net.SplitHostPort(a); return p }
	for range 20000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := l.Addr().String()
		l.Close()
		if port(got) == port(addr) {
			t.Fatalf("a listener on port 0 was given the reserved port %s", port(addr))
		}
	}
}
