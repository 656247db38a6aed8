//go:build !linux

package supervisor

import (
	"sync"

	"github.com/fsnotify/fsnotify"
)

// fsnotifyWatcher is the dirWatcher where inotify is not available. It
// cannot tell a rename into the directory from a new file written in place,
// nor see a writer's close: every creation and write waits for settle.
type fsnotifyWatcher struct {
	w      *fsnotify.Watcher
	events chan fileEvent
	done   chan struct{} // closed by Close: the adapter stops even if nobody takes its events
	once   sync.Once
}

var _ dirWatcher = (*fsnotifyWatcher)(nil)

func newDirWatcher() (dirWatcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &fsnotifyWatcher{w: fw, events: make(chan fileEvent, 64), done: make(chan struct{})}
	go func() {
		defer close(w.events)
		for ev := range fw.Events {
			op := opAttrib
			switch {
			case ev.Has(fsnotify.Create), ev.Has(fsnotify.Write):
				op = opWrite
			case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
				op = opRemove
			}
			select {
			case w.events <- fileEvent{path: ev.Name, op: op}:
			case <-w.done:
				return
			}
		}
	}()
	return w, nil
}

func (w *fsnotifyWatcher) Add(dir string) error { return w.w.Add(dir) }

// AddEntries is Add: fsnotify cannot leave writes out.
func (w *fsnotifyWatcher) AddEntries(dir string) error { return w.w.Add(dir) }
func (w *fsnotifyWatcher) Events() <-chan fileEvent    { return w.events }
func (w *fsnotifyWatcher) Errors() <-chan error        { return w.w.Errors }

// Close stops watching; it is idempotent.
func (w *fsnotifyWatcher) Close() error {
	w.once.Do(func() { close(w.done) })
	return w.w.Close()
}
