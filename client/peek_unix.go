//go:build unix

package client

import (
	"errors"
	"io"
	"syscall"
)

// errUnasked is a byte the server sent while the connection was idle.
var errUnasked = errors.New("client: data on an idle connection")

// peek looks at the socket without blocking or consuming: nothing to read
// means the connection is open and idle. It always returns true, so that
// RawConn.Read does not wait.
func (pc *pconn) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), pc.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		pc.peekErr = nil
	case err != nil:
		pc.peekErr = err
	case n == 0:
		pc.peekErr = io.EOF
	default:
		pc.peekErr = errUnasked
	}
	return true
}
