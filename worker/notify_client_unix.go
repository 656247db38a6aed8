//go:build unix

package worker

import (
	"net"
	"os"
	"syscall"
)

// notifyWriteNow makes one non-blocking send of msg on c; it returns
// syscall.EAGAIN when the receiver's queue is full.
func notifyWriteNow(c *net.UnixConn, msg []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			_, werr = syscall.Write(int(fd), msg)
			if werr != syscall.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return os.NewSyscallError("write", werr)
	}
	return nil
}
