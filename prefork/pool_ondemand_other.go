//go:build !linux

package prefork

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// listenPoll bounds how long listenWait waits in poll before it looks
// whether it is to stop.
const listenPoll = 250 * time.Millisecond

// listenWait waits until one of fds, listening sockets, has a client
// waiting (a connection in the backlog, a datagram in the queue), without
// taking it; false once ctx ends or stop is closed. It waits in poll(2),
// in a thread of its own.
func listenWait(ctx context.Context, fds []int, stop <-chan struct{}) (bool, error) {
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	for ctx.Err() == nil {
		select {
		case <-stop:
			return false, nil
		default:
		}
		n, err := unix.Poll(pfds, int(listenPoll/time.Millisecond))
		if err != nil && err != unix.EINTR {
			return false, err
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}
