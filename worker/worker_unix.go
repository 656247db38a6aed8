//go:build unix

package worker

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// inheritCloexec sets close-on-exec on an inherited fd; it fails for an fd
// that is not open.
func inheritCloexec(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	return err
}

// inheritedKind tells a listening stream socket from a datagram socket and
// from anything else, by SO_TYPE and SO_ACCEPTCONN. It never calls f.Fd,
// which would put the socket, shared with every other worker, in blocking mode.
func inheritedKind(f *os.File) (fdKind, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return fdOther, err
	}
	var (
		typ, listening int
		serr           error
	)
	err = rc.Control(func(fd uintptr) {
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		if serr == nil && (typ == unix.SOCK_STREAM || typ == unix.SOCK_SEQPACKET) {
			listening, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		}
	})
	if err != nil {
		return fdOther, err
	}
	switch {
	case errors.Is(serr, syscall.ENOTSOCK):
		return fdOther, nil
	case serr != nil:
		return fdOther, os.NewSyscallError("getsockopt", serr)
	case typ == unix.SOCK_DGRAM:
		return fdDatagram, nil
	case listening != 0:
		return fdStreamListener, nil
	}
	return fdOther, nil
}
