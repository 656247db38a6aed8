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

// TestEntriesWatchIgnoresWritesBesideEtc: the parent of etc/ is watched for
// etc/ being replaced, not for the files beside it: a log written there
// hundreds of times must not wake the master each time. Events come in
// order, so the first one after the writes must be the marker made last.
func TestEntriesWatchIgnoresWritesBesideEtc(t *testing.T) {
	w, dir := watchTemp(t, dirWatcher.AddEntries)
	log := filepath.Join(dir, "out.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, w, log); ev.op != opWrite {
		t.Errorf("a file made beside etc/: %v", ev.op)
	}
	for range 200 {
		if _, err := f.WriteString("a line\n"); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	os.Chmod(log, 0o600)
	marker := filepath.Join(dir, "marker")
	if err := os.Mkdir(marker, 0o755); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.Events():
		if ev.path != marker {
			t.Fatalf("event %s %v for a write or chmod beside etc/, want none before the marker", ev.path, ev.op)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the marker")
	}
	etc := filepath.Join(dir, "etc")
	if err := os.Rename(marker, etc); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, w, marker); ev.op != opRemove {
		t.Errorf("renamed away: %v", ev.op)
	}
	if ev := nextEvent(t, w, etc); ev.op != opRenameIn {
		t.Errorf("etc/ replaced by a rename: %v", ev.op)
	}
	if err := os.Remove(etc); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, w, etc); ev.op != opRemove {
		t.Errorf("etc/ removed: %v", ev.op)
	}
}

// TestChmodOfEtcReloads: etc/'s own mode and owner decide whether it is
// read (one writable by others is refused), so changing them reloads, as a
// change of a file in it does, though the parent's watch leaves attributes
// out.
func TestChmodOfEtcReloads(t *testing.T) {
	etc := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(etc, 0o777); err != nil {
		t.Fatal(err)
	}
	s := &Supervisor{master: &config.Master{Dir: etc}, log: hclog.NewNullLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := s.watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload after etc/'s mode changed")
	}
}
