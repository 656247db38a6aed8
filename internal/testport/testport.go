// Package testport gives tests a loopback TCP port that stays theirs when
// nothing listens on it.
//
// A test that listens on 127.0.0.1:0, closes the listener (or stops the
// server, daemon or master that held it) and then expects the address to
// refuse connections, or to bind it again, races every other process on
// the machine: go test runs packages in parallel, and the kernel may hand
// the freed port to the next listener on port 0, or take it as the local
// port of an outgoing connection. The other process then answers, resets
// the connection or holds the port (CI). Reserve closes that window.
package testport

import "testing"

// Reserve returns a loopback address, 127.0.0.1:PORT, whose port is held
// for tb until it ends. Anything of the test (or a process it started) can
// listen on it, as often as it likes, while nothing else is given the port:
// once that listener is closed, a connection to the address is refused, and
// the port is free for the test to listen on again.
//
// On Linux the port is held by a socket bound with SO_REUSEADDR that never
// listens: a listener of the same address (Go's net.Listen sets
// SO_REUSEADDR) binds beside it, a connection finds no listener and is
// refused, and the kernel never picks a bound port for a bind to port 0 or
// as an outgoing connection's local port. Elsewhere (the tests run on
// Linux) it returns a port that was free when it was asked for.
func Reserve(tb testing.TB) string {
	tb.Helper()
	return reserve(tb)
}
