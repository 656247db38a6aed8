//go:build darwin || freebsd

package prefork

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// kqueueWatcher is the portable backend's exit watcher on macOS and
// FreeBSD: one kqueue with an EVFILT_PROC/NOTE_EXIT filter per process,
// waited on by one goroutine. NOTE_EXIT does not reap the process.
type kqueueWatcher struct {
	kq   int
	done chan struct{}

	mu      sync.Mutex
	watches map[int]func()
	closed  bool
}

// wakeIdent is the EVFILT_USER event that wakes the loop to stop.
const wakeIdent = 0

func newExitWatcher() (exitWatcher, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, fmt.Errorf("kqueue: %w", err)
	}
	unix.CloseOnExec(kq)
	var ev unix.Kevent_t
	unix.SetKevent(&ev, wakeIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	if _, err := unix.Kevent(kq, []unix.Kevent_t{ev}, nil, nil); err != nil {
		unix.Close(kq)
		return nil, fmt.Errorf("kevent add user event: %w", err)
	}
	w := &kqueueWatcher{kq: kq, done: make(chan struct{}), watches: map[int]func(){}}
	go w.run()
	return w, nil
}

var errWatcherClosed = errors.New("exit watcher closed")

func (w *kqueueWatcher) watch(pid int, exited func()) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errWatcherClosed
	}
	w.watches[pid] = exited
	w.mu.Unlock()
	var ev unix.Kevent_t
	unix.SetKevent(&ev, pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	ev.Fflags = unix.NOTE_EXIT
	_, err := unix.Kevent(w.kq, []unix.Kevent_t{ev}, nil, nil)
	if err == nil {
		return nil
	}
	// ESRCH: the process has exited already (it is a zombie, not watchable).
	w.mu.Lock()
	fn, ok := w.watches[pid]
	delete(w.watches, pid)
	w.mu.Unlock()
	if !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kevent add pid %d: %w", pid, err)
	}
	if ok {
		fn()
	}
	return nil
}

func (w *kqueueWatcher) forget(pid int) {
	w.mu.Lock()
	delete(w.watches, pid)
	w.mu.Unlock()
}

func (w *kqueueWatcher) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	var ev unix.Kevent_t
	unix.SetKevent(&ev, wakeIdent, unix.EVFILT_USER, 0)
	ev.Fflags = unix.NOTE_TRIGGER
	if _, err := unix.Kevent(w.kq, []unix.Kevent_t{ev}, nil, nil); err == nil {
		<-w.done
	}
	unix.Close(w.kq)
}

func (w *kqueueWatcher) run() {
	defer close(w.done)
	events := make([]unix.Kevent_t, 64)
	for {
		n, err := unix.Kevent(w.kq, nil, events, nil)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			panic(fmt.Errorf("prefork: exit watcher: kevent: %w", err))
		}
		for _, ev := range events[:n] {
			if ev.Filter == unix.EVFILT_USER {
				return
			}
			if ev.Filter != unix.EVFILT_PROC || ev.Fflags&unix.NOTE_EXIT == 0 {
				continue
			}
			pid := int(ev.Ident)
			w.mu.Lock()
			fn, ok := w.watches[pid]
			delete(w.watches, pid)
			w.mu.Unlock()
			if ok {
				fn()
			}
		}
	}
}

// fionread asks how many bytes a pipe holds: FIONREAD, _IOR('f', 127,
// int) on macOS and FreeBSD alike (x/sys/unix does not name it).
const fionread = 0x4004667f
