package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nsfd/nsfd/config"
)

// How long etc/ must be quiet before a reload (variables so that tests can
// shorten them).
var (
	// debounce follows changes that are complete when they happen: a file
	// renamed into etc/ (the safe way to write one), a removal, a change of
	// owner or mode. Editors that save by rename (vim: write 4913, rename
	// the file to file~, write the new one) produce a burst of events that
	// must make exactly one reload.
	debounce = 40 * time.Millisecond
	// settle follows a file written in place. Nothing tells when such a
	// file is complete: `cat >>` twice, or a tool that writes in pieces,
	// closes it in between. It is applied once nothing has touched it for
	// settle, and never while a process has it open for writing
	// (config.ErrBeingWritten; its close is an event that starts settle
	// again).
	settle = 2 * time.Second
)

// fileOp is what happened to a file in a watched directory.
type fileOp int

const (
	opWrite    fileOp = iota + 1 // created, written, or closed after writing, in place
	opRenameIn                   // renamed into the directory: complete
	opRemove                     // removed, or renamed away
	opAttrib                     // owner, mode or times changed
	opOverflow                   // the kernel dropped events: anything may have changed
)

// String names the operation, for debug logs.
func (o fileOp) String() string {
	switch o {
	case opWrite:
		return "write"
	case opRenameIn:
		return "rename-in"
	case opRemove:
		return "remove"
	case opAttrib:
		return "attrib"
	case opOverflow:
		return "overflow"
	}
	return fmt.Sprintf("fileOp(%d)", int(o))
}

// fileEvent is one change in a watched directory.
type fileEvent struct {
	path string // the file's path: the watched directory joined with its name
	op   fileOp
}

// dirWatcher reports changes to the entries of watched directories: inotify
// on Linux (which tells a rename into the directory from a write in place,
// and reports a writer's close), fsnotify elsewhere.
type dirWatcher interface {
	// Add watches the entries of dir, not its subdirectories. Adding a
	// directory again after it was replaced watches the new one.
	Add(dir string) error
	// AddEntries watches only entries made, renamed in or out, or removed
	// in dir, not writes to them or their attributes: what the parent of
	// etc/ is watched for, without waking at every write to its other files.
	AddEntries(dir string) error
	// Events delivers the changes; it is closed by Close.
	Events() <-chan fileEvent
	// Errors delivers problems with the watch itself.
	Errors() <-chan error
	// Close stops watching.
	Close() error
}

// watcher turns file events in etc/ into one signal per burst of changes,
// once the files changed are complete.
type watcher struct {
	changes chan struct{}
}

// delayFor says how long after ev a reload may read etc/, and false for an
// event that does not concern etc/'s files.
func delayFor(ev fileEvent, etc string) (time.Duration, bool) {
	if ev.op == opOverflow {
		return settle, true
	}
	dir, base := filepath.Dir(ev.path), filepath.Base(ev.path)
	switch {
	case ev.path == etc: // etc/ itself was replaced or (re)created
		return debounce, true
	case dir != etc || (base != config.MasterFileName && !config.IsDaemonFileName(base)):
		return 0, false // editor temp files, other directories
	case ev.op == opWrite:
		return settle, true
	}
	return debounce, true
}

// watch watches etc/ (and its parent, so a replaced etc/ is watched again)
// until ctx ends.
func (s *Supervisor) watch(ctx context.Context) (*watcher, error) {
	fw, err := newDirWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch etc: %w", err)
	}
	etc := s.master.Dir
	if err := fw.Add(etc); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", etc, err)
	}
	if err := fw.AddEntries(filepath.Dir(etc)); err != nil {
		s.log.Debug("not watching the parent of etc/", "error", err)
	}
	w := &watcher{changes: make(chan struct{}, 1)}
	go func() {
		defer fw.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		var due time.Time // when the pending reload may run; zero: none pending
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-fw.Events():
				if !ok {
					return
				}
				delay, ok := delayFor(ev, etc)
				if !ok {
					continue
				}
				if ev.path == etc && ev.op != opRemove {
					_ = fw.Add(etc) // watch the new etc/
				}
				s.log.Trace("etc/ changed", "file", ev.path, "op", ev.op.String(), "delay", delay)
				// A reload waits for the slowest file: one written in place
				// holds back a rename that comes during its settle time.
				if at := time.Now().Add(delay); at.After(due) {
					due = at
					timer.Reset(delay)
				}
			case err, ok := <-fw.Errors():
				if !ok {
					return
				}
				s.log.Warn("watching etc/", "error", err)
			case <-timer.C:
				due = time.Time{}
				select {
				case w.changes <- struct{}{}:
				default: // a reload is already pending
				}
			}
		}
	}()
	return w, nil
}
