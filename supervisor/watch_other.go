//go:build !linux

package supervisor

import (
	"github.com/fsnotify/fsnotify"
)

// fsnotifyWatcher is the dirWatcher where inotify is not available. It
// cannot tell a rename into the directory from a new file written in place,
// nor see a writer's close: every creation and write waits for settle.
type fsnotifyWatcher struct {
	w      *fsnotify.Watcher
	events chan fileEvent
}

var _ dirWatcher = (*fsnotifyWatcher)(nil)

func newDirWatcher() (dirWatcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &fsnotifyWatcher{w: fw, events: make(chan fileEvent, 64)}
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
			w.events <- fileEvent{path: ev.Name, op: op}
		}
	}()
	return w, nil
}

func (w *fsnotifyWatcher) Add(dir string) error     { return w.w.Add(dir) }
func (w *fsnotifyWatcher) Events() <-chan fileEvent { return w.events }
func (w *fsnotifyWatcher) Errors() <-chan error     { return w.w.Errors }
func (w *fsnotifyWatcher) Close() error             { return w.w.Close() }
