package client

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsfd/nsfd/wire"
)

// TestAckTimeoutIsSet: a TCP connection to an endpoint carries
// TCP_USER_TIMEOUT = AckTimeout.
func TestAckTimeoutIsSet(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", whoHandler("a"), wire.ServerOptions{})
	reg := newRegistry(t)
	register(t, reg, "n1", "kv", "json", s.addr)
	for _, c := range []struct {
		opt  time.Duration
		want int
	}{{0, int(DefaultAckTimeout.Milliseconds())}, {750 * time.Millisecond, 750}, {-1, 0}} {
		cl := New(reg, Options{LocalNode: "n1", NoWatch: true, AckTimeout: c.opt})
		conn, err := cl.Dial(bg, "kv")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := conn.NetConn().(syscall.Conn).SyscallConn()
		var got int
		var gerr error
		raw.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
		conn.Close()
		cl.Close()
		if gerr != nil || got != c.want {
			t.Errorf("AckTimeout %v: TCP_USER_TIMEOUT %d (%v), want %d", c.opt, got, gerr, c.want)
		}
	}
}
