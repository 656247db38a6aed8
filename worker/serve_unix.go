//go:build unix

package worker

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// nbListener accepts without blocking on a listener that shares the
// worker's connection slots with other listeners.
type nbListener struct {
	l  net.Listener
	rc syscall.RawConn // the listener's, to accept
	// ready is another fd of the same socket, registered with the poller,
	// to wait for a pending connection: a listener's RawConn cannot wait.
	ready *os.File
}

// newNBListener returns nil if l has no file descriptor; Serve then
// accepts on it the plain way.
func newNBListener(l net.Listener) *nbListener {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	dup := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err != nil || derr != nil {
		return nil
	}
	// The socket is non-blocking already (as every Go listener): setting it
	// again makes sure os.NewFile puts the fd in the poller.
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil
	}
	return &nbListener{l: l, rc: rc, ready: os.NewFile(uintptr(dup), "listener")}
}

// Close stops waitPending; it does not close the listener.
func (nl *nbListener) Close() error { return nl.ready.Close() }

// waitPending waits until a connection is pending on the listener, or nl
// is closed. Another worker may still take the connection first.
func (nl *nbListener) waitPending() error {
	rc, err := nl.ready.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 0)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				perr = os.NewSyscallError("poll", err)
				return true
			}
			return n > 0
		}
	})
	if err != nil {
		return err
	}
	return perr
}

// pending reports whether a connection is pending on the listener now.
func (nl *nbListener) pending() bool {
	rc, err := nl.ready.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			var perr error
			n, perr = unix.Poll(fds, 0)
			if perr != unix.EINTR {
				return
			}
		}
	})
	return n > 0
}

// acceptNow accepts a pending connection; it returns an error wrapping
// syscall.EAGAIN if there is none.
func (nl *nbListener) acceptNow() (net.Conn, error) {
	var (
		nfd  int
		aerr error
	)
	err := nl.rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		for {
			nfd, _, aerr = syscall.Accept(int(fd))
			if aerr != syscall.EINTR {
				break
			}
		}
		if aerr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, &net.OpError{Op: "accept", Net: nl.l.Addr().Network(), Addr: nl.l.Addr(),
			Err: os.NewSyscallError("accept", aerr)}
	}
	f := os.NewFile(uintptr(nfd), "")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return c, nil
}
