package prefork

import (
	"sync"

	"golang.org/x/sys/unix"
)

// lowFDs are descriptors a pump holds at the bottom of the master's table
// (copies of /dev/null between spawns) that a direct spawn's descriptors
// are copied onto first: the child then copies only that low part of the
// master's table (close_range with CLOSE_RANGE_UNSHARE stops below its
// highest descriptor), not the thousands of pipes and pidfds of the other
// workers above it. Reserved when the pump opens, early in the master's
// life, so that they are low.
type lowFDs struct {
	mu   sync.Mutex
	null int
	fds  []int
}

// lowFDCount is how many are reserved: stdin, stdout, stderr and up to 13
// listeners; a worker with more uses its descriptors where they are.
const lowFDCount = 16

// openLowFDs reserves lowFDCount descriptors from 3 up; nil if it cannot.
func openLowFDs() *lowFDs {
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	l := &lowFDs{null: null}
	for range lowFDCount {
		fd, err := unix.FcntlInt(uintptr(null), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			l.close()
			return nil
		}
		l.fds = append(l.fds, fd)
	}
	return l
}

// with calls spawn with fds, copied onto the low descriptors when they
// fit, and puts /dev/null back on them once spawn has returned (the child
// has its own copies by then). Spawns through one lowFDs take turns.
func (l *lowFDs) with(fds []int, spawn func(fds []int)) {
	if l == nil || len(fds) > len(l.fds) {
		spawn(fds)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	low := l.fds[:len(fds)]
	for i, fd := range fds {
		if err := unix.Dup3(fd, low[i], unix.O_CLOEXEC); err != nil {
			l.reset(low[:i])
			spawn(fds)
			return
		}
	}
	spawn(low)
	l.reset(low)
}

// reset puts /dev/null back on fds, dropping the master's extra reference
// to what they held.
func (l *lowFDs) reset(fds []int) {
	for _, fd := range fds {
		unix.Dup3(l.null, fd, unix.O_CLOEXEC)
	}
}

func (l *lowFDs) close() {
	if l == nil {
		return
	}
	for _, fd := range l.fds {
		unix.Close(fd)
	}
	unix.Close(l.null)
}
