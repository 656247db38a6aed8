package supervisor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// inotifyMask is what the watcher asks inotify for: writes and closes
// after writing (IN_CLOSE_WRITE: a writer is done), renames in
// (IN_MOVED_TO: a complete file) and away, removals and attribute changes.
const inotifyMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO |
	unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_ATTRIB | unix.IN_ONLYDIR

// entriesMask is what AddEntries asks for: entries made, renamed in or out
// and removed.
const entriesMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_ONLYDIR

// inotifyWatcher is the dirWatcher of Linux, on inotify(7) directly:
// fsnotify folds IN_MOVED_TO into Create and does not export
// IN_CLOSE_WRITE.
type inotifyWatcher struct {
	f      *os.File
	events chan fileEvent
	errs   chan error
	done   chan struct{} // closed by Close: the reader stops even if nobody takes its events
	once   sync.Once

	mu   sync.Mutex
	dirs map[int]string // watch descriptor -> directory
}

var _ dirWatcher = (*inotifyWatcher)(nil)

func newDirWatcher() (dirWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &inotifyWatcher{
		f:      os.NewFile(uintptr(fd), "inotify"), // non-blocking: reads go through the runtime's poller, and Close ends them
		events: make(chan fileEvent, 64),
		errs:   make(chan error, 1),
		done:   make(chan struct{}),
		dirs:   map[int]string{},
	}
	go w.read()
	return w, nil
}

func (w *inotifyWatcher) Add(dir string) error        { return w.add(dir, inotifyMask) }
func (w *inotifyWatcher) AddEntries(dir string) error { return w.add(dir, entriesMask) }

func (w *inotifyWatcher) add(dir string, mask uint32) error {
	raw, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var wd int
	var aerr error
	if err := raw.Control(func(fd uintptr) {
		wd, aerr = unix.InotifyAddWatch(int(fd), dir, mask)
	}); err != nil {
		return err
	}
	if aerr != nil {
		return fmt.Errorf("inotify %s: %w", dir, aerr)
	}
	w.mu.Lock()
	w.dirs[wd] = filepath.Clean(dir)
	w.mu.Unlock()
	return nil
}

func (w *inotifyWatcher) Events() <-chan fileEvent { return w.events }
func (w *inotifyWatcher) Errors() <-chan error     { return w.errs }

// Close stops watching; it is idempotent.
func (w *inotifyWatcher) Close() error {
	err := os.ErrClosed
	w.once.Do(func() {
		close(w.done)
		err = w.f.Close()
	})
	return err
}

// read delivers the events read from inotify until the watcher is closed.
func (w *inotifyWatcher) read() {
	defer close(w.events)
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				select {
				case w.errs <- fmt.Errorf("inotify: %w", err):
				default:
				}
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int(int32(binary.NativeEndian.Uint32(buf[off:])))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			size := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := ""
			if end := off + unix.SizeofInotifyEvent + size; size > 0 && end <= n {
				name = strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00")
			}
			off += unix.SizeofInotifyEvent + size
			if ev, ok := w.event(wd, mask, name); ok {
				select {
				case w.events <- ev:
				case <-w.done:
					return
				}
			}
		}
	}
}

// event turns one inotify event into a fileEvent, if it is one.
func (w *inotifyWatcher) event(wd int, mask uint32, name string) (fileEvent, bool) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		return fileEvent{op: opOverflow}, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	dir, ok := w.dirs[wd]
	if mask&unix.IN_IGNORED != 0 {
		delete(w.dirs, wd) // the directory is gone
		return fileEvent{}, false
	}
	if ok && name == "" && mask&unix.IN_ATTRIB != 0 {
		// The watched directory itself: etc/'s mode or owner, which decide
		// whether it is read at all (a chmod go-w makes a refused etc/
		// good). Its parent's watch leaves attributes out.
		return fileEvent{path: dir, op: opAttrib}, true
	}
	if !ok || name == "" {
		return fileEvent{}, false
	}
	ev := fileEvent{path: filepath.Join(dir, name)}
	switch {
	case mask&unix.IN_MOVED_TO != 0:
		ev.op = opRenameIn
	case mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
		ev.op = opRemove
	case mask&(unix.IN_CREATE|unix.IN_MODIFY|unix.IN_CLOSE_WRITE) != 0:
		ev.op = opWrite
	case mask&unix.IN_ATTRIB != 0:
		ev.op = opAttrib
	default:
		return fileEvent{}, false
	}
	return ev, true
}
