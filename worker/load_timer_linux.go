package worker

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fdTimer is a loadTimer on a timerfd that a goroutine reads through the
// runtime's poller. A worker whose only timer it is has no runtime timer
// pending: with one pending, a Go program's idle threads wake each other
// through the poller whenever they park, which, for a worker that goes
// idle between every two short connections, costs a wake-up per
// connection. An expiry of the timerfd is just another readable fd.
type fdTimer struct {
	fd   int
	f    *os.File
	done chan struct{} // closed when the reading goroutine has returned
}

var _ loadTimer = (*fdTimer)(nil)

// newLoadTimer returns a timerfd-based timer, or a runtime timer if the
// kernel does not give a timerfd.
func newLoadTimer(f func()) loadTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newRuntimeTimer(f)
	}
	t := &fdTimer{fd: fd, f: os.NewFile(uintptr(fd), "timerfd"), done: make(chan struct{})}
	go t.run(f)
	return t
}

// run calls f at each expiry until the timer is closed.
func (t *fdTimer) run(f func()) {
	defer close(t.done)
	var buf [8]byte // the number of expirations
	for {
		if _, err := t.f.Read(buf[:]); err != nil {
			return // closed
		}
		f()
	}
}

func (t *fdTimer) Reset(d time.Duration) {
	// A zero value would disarm it; the settime error, on a valid fd, cannot happen.
	_ = unix.TimerfdSettime(t.fd, 0, &unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}, nil)
}

func (t *fdTimer) Stop() { _ = unix.TimerfdSettime(t.fd, 0, &unix.ItimerSpec{}, nil) }

func (t *fdTimer) Close() {
	t.f.Close()
	<-t.done
}
