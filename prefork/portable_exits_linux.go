package prefork

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// sigchldWatcher is the portable backend's exit watcher on Linux, where it
// stands in for kqueue's EVFILT_PROC so that the backend runs here too: at
// each SIGCHLD (and after each new watch, which may have come after its
// process's SIGCHLD) one goroutine asks waitid, with WNOHANG and WNOWAIT,
// about each process watched. Nothing is reaped; the signal wakes no
// thread per process.
type sigchldWatcher struct {
	sigs chan os.Signal
	kick chan struct{}
	done chan struct{}

	mu      sync.Mutex
	watches map[int]func()
	closed  bool
}

func newExitWatcher() (exitWatcher, error) {
	w := &sigchldWatcher{
		sigs:    make(chan os.Signal, 1),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		watches: map[int]func(){},
	}
	signal.Notify(w.sigs, syscall.SIGCHLD)
	go w.run()
	return w, nil
}

var errWatcherClosed = errors.New("exit watcher closed")

func (w *sigchldWatcher) watch(pid int, exited func()) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errWatcherClosed
	}
	w.watches[pid] = exited
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

func (w *sigchldWatcher) forget(pid int) {
	w.mu.Lock()
	delete(w.watches, pid)
	w.mu.Unlock()
}

func (w *sigchldWatcher) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		signal.Stop(w.sigs)
		close(w.done)
	}
	w.mu.Unlock()
}

func (w *sigchldWatcher) run() {
	for {
		select {
		case <-w.sigs:
		case <-w.kick:
		case <-w.done:
			return
		}
		w.mu.Lock()
		var fns []func()
		for pid, fn := range w.watches {
			if exitedNoReap(pid) {
				delete(w.watches, pid)
				fns = append(fns, fn)
			}
		}
		w.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	}
}

// exitedNoReap reports whether pid, a child of this process, has exited,
// leaving it to be reaped.
func exitedNoReap(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil: // ECHILD: reaped already, so gone
			return true
		}
		// With WNOHANG and no child exited, the kernel writes a zero signo.
		return info.Signo == int32(unix.SIGCHLD)
	}
}

// fionread asks how many bytes a pipe holds.
const fionread = unix.TIOCINQ
