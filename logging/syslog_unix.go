//go:build unix

package logging

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the receiver at the other end of the stream
// connection c has closed it (or reset it), without waiting: a syslog
// receiver never sends anything, so a readable end of file or an error is a
// connection to replace before writing, rather than finding out from a
// write that seemed to succeed and lost its record.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default:
			closed = true
		}
		return true
	})
	return closed || err != nil
}
