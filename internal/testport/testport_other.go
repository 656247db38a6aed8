//go:build !linux

package testport

import (
	"net"
	"testing"
)

// reserve returns a port that was free a moment ago: BSD sockets let a
// second socket bind an address held by another only if both set
// SO_REUSEPORT, which the listeners of the code under test do not.
func reserve(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testport: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
