package supervisor

import (
	"net"
	"testing"
	"time"
)

// TestLimitListenerCapsConnections: past the cap, Accept waits until a
// served connection closes.
func TestLimitListenerCapsConnections(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(inner, 1)
	defer l.Close()
	for range 2 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted past the cap of 1")
	case <-time.After(50 * time.Millisecond):
	}
	first.Close()
	first.Close() // the slot is given back once
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the second connection was not accepted once the first closed")
	}
}
