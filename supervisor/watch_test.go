package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
)

func TestDelayFor(t *testing.T) {
	etc := "/x/etc"
	for _, tc := range []struct {
		ev    fileEvent
		delay time.Duration
		ok    bool
	}{
		{fileEvent{"/x/etc/echo.ini", opRenameIn}, debounce, true},
		{fileEvent{"/x/etc/echo.ini", opWrite}, settle, true},
		{fileEvent{"/x/etc/nsfd.ini", opWrite}, settle, true},
		{fileEvent{"/x/etc/echo.conf", opRemove}, debounce, true},
		{fileEvent{"/x/etc/echo.ini", opAttrib}, debounce, true},
		{fileEvent{"/x/etc", opRenameIn}, debounce, true},
		{fileEvent{"", opOverflow}, settle, true},
		{fileEvent{"/x/etc/.echo.ini.swp", opWrite}, 0, false},
		{fileEvent{"/x/etc/.echo.ini.tmp", opWrite}, 0, false},
		{fileEvent{"/x/etc/notes.txt", opRenameIn}, 0, false},
		{fileEvent{"/x/other", opRenameIn}, 0, false},
		{fileEvent{"/x/etc/sub/a.ini", opWrite}, 0, false},
	} {
		d, ok := delayFor(tc.ev, etc)
		if d != tc.delay || ok != tc.ok {
			t.Errorf("%s %s: %v %v, want %v %v", tc.ev.path, tc.ev.op, d, ok, tc.delay, tc.ok)
		}
	}
}

// nextEvent waits for the watcher's next event about path.
func nextEvent(t *testing.T, w dirWatcher, path string) fileEvent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-w.Events():
			if ev.path == path {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event for %s", path)
		}
	}
}

// drain discards the events already queued, and those that follow within
// a moment of quiet.
func drain(w dirWatcher) {
	for {
		select {
		case <-w.Events():
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

// watchTemp returns a dirWatcher watching a new temporary directory with
// add (its Add or AddEntries), and the directory.
func watchTemp(t *testing.T, add func(w dirWatcher, dir string) error) (dirWatcher, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := newDirWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := add(w, dir); err != nil {
		t.Fatal(err)
	}
	return w, dir
}

func TestDirWatcherTellsRenamesFromWritesAndSeesTheClose(t *testing.T) {
	w, dir := watchTemp(t, dirWatcher.Add)
	a := filepath.Join(dir, "a.ini")
	os.WriteFile(a+".tmp", []byte("x"), 0o644)
	drain(w)
	os.Rename(a+".tmp", a)
	if ev := nextEvent(t, w, a); ev.op != opRenameIn {
		t.Errorf("rename into the directory: %v, want rename-in", ev.op)
	}

	b := filepath.Join(dir, "b.ini")
	f, err := os.OpenFile(b, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("part 1\n")
	if ev := nextEvent(t, w, b); ev.op != opWrite {
		t.Errorf("write in place: %v", ev.op)
	}
	drain(w)
	f.Close() // no write: the close alone is an event
	if ev := nextEvent(t, w, b); ev.op != opWrite {
		t.Errorf("close after writing: %v", ev.op)
	}
	os.Chmod(b, 0o600)
	if ev := nextEvent(t, w, b); ev.op != opAttrib {
		t.Errorf("chmod: %v", ev.op)
	}
	os.Remove(b)
	if ev := nextEvent(t, w, b); ev.op != opRemove {
		t.Errorf("remove: %v", ev.op)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for range w.Events() {
	}
}

func TestWatchAppliesRenamesAtOnceAndWritesInPlaceWhenSettled(t *testing.T) {
	oldD, oldS := debounce, settle
	debounce, settle = 10*time.Millisecond, 400*time.Millisecond
	defer func() { debounce, settle = oldD, oldS }()
	etc := filepath.Join(t.TempDir(), "etc")
	os.Mkdir(etc, 0o755)
	s := &Supervisor{master: &config.Master{Dir: etc}, log: hclog.NewNullLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := s.watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitChange := func(what string) time.Time {
		t.Helper()
		select {
		case <-w.changes:
			return time.Now()
		case <-time.After(5 * time.Second):
			t.Fatalf("no reload after %s", what)
		}
		return time.Time{}
	}

	// The safe way: written under a temporary name, renamed into place.
	tmp := filepath.Join(etc, ".a.ini.tmp")
	os.WriteFile(tmp, []byte("command = /bin/true\n"), 0o644)
	start := time.Now()
	os.Rename(tmp, filepath.Join(etc, "a.ini"))
	if d := waitChange("a rename").Sub(start); d >= settle {
		t.Errorf("a renamed file waited %v, as long as one written in place", d)
	}

	// In place, in two pieces: one reload, settle after the last piece.
	path := filepath.Join(etc, "b.ini")
	appendTo := func(text string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}
	appendTo("command = /bin/true\n")
	time.Sleep(settle / 2) // the writer's pause, part of the scenario
	appendTo("user = nobody\n")
	last := time.Now()
	if d := waitChange("a write in place").Sub(last); d < settle-20*time.Millisecond {
		t.Errorf("reloaded %v after the last piece, before settle (%v)", d, settle)
	}
	select {
	case <-w.changes:
		t.Error("two reloads for one file written in two pieces")
	case <-time.After(settle):
	}

	// A rename during another file's settle waits for it.
	appendTo("[env]\n")
	os.WriteFile(tmp, []byte("command = /bin/true\n"), 0o644)
	last = time.Now()
	os.Rename(tmp, filepath.Join(etc, "a.ini"))
	if d := waitChange("a rename while b settles").Sub(last); d < settle-20*time.Millisecond {
		t.Errorf("reloaded %v after the rename, while b.ini was settling (%v)", d, settle)
	}
}
