package prefork

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// listenWait waits until one of fds, listening sockets, has a client
// waiting (a connection in the backlog, a datagram in the queue), without
// taking it; false once ctx ends or stop is closed. The sockets go into an
// epoll instance of their own, level-triggered, and the runtime's poller
// watches that instance: no thread waits, and the sockets' blocking mode
// (shared with the workers, which expect what systemd hands over) is left
// alone.
func listenWait(ctx context.Context, fds []int, stop <-chan struct{}) (bool, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false, fmt.Errorf("epoll_create1: %w", err)
	}
	for _, fd := range fds {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			unix.Close(ep)
			return false, fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return false, err
	}
	f := os.NewFile(uintptr(ep), "listeners")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		case <-ended:
			return
		}
		_ = f.SetReadDeadline(time.Unix(1, 0)) // wakes the wait below
	}()
	ready := false
	events := make([]unix.EpollEvent, 1)
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), events, 0)
		ready = err == nil && n > 0
		return ready // false: wait until the poller says the instance has an event
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil
	}
	return ready, err
}
