//go:build unix

package prefork

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	proto "github.com/nsfd/nsfd/worker"
)

// boardWord reads the 32-bit word at off of the board file at path.
func boardWord(t *testing.T, path string, off int) uint32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return binary.NativeEndian.Uint32(b[off:])
}

func TestLoadBoardForget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.load")
	b, err := openLoadBoard(path, -1, -1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || st.Size() != proto.LoadBoardSize {
		t.Fatalf("board file: %v, %v; want mode 0600, %d bytes", st, err, proto.LoadBoardSize)
	}
	// Two workers claim entries 0 and 5 as worker.Balance does.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	put := func(entry int, pid, count uint32) {
		var w [8]byte
		binary.NativeEndian.PutUint32(w[:], pid)
		binary.NativeEndian.PutUint32(w[4:], count)
		if _, err := f.WriteAt(w[:], int64(entry*proto.LoadBoardEntrySize)); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 101, 3)
	put(5, 202, 1<<31)
	b.forget(202)
	if got := boardWord(t, path, 5*proto.LoadBoardEntrySize); got != 0 {
		t.Errorf("entry of reaped pid 202 holds pid %d, want 0", got)
	}
	if got := boardWord(t, path, 0); got != 101 {
		t.Errorf("entry of live pid 101 holds %d, want 101", got)
	}
	b.forget(303) // never on the board: nothing changes
	if got := boardWord(t, path, 0); got != 101 {
		t.Errorf("forget of an absent pid changed entry 0 to %d", got)
	}

	// The workers own the file and may truncate it: the master must live
	// on (a mapping would take SIGBUS here) and not grow the file back.
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	b.forget(101)
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Errorf("after forget on a truncated board: %v, %v; want it left empty", st, err)
	}
}

func TestLoadBoardOpenReplacesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	// keep: a board of the right size is used as it is...
	path := filepath.Join(dir, "web.load")
	b, err := openLoadBoard(path, -1, -1, false)
	if err != nil {
		t.Fatal(err)
	}
	ino := b.ino
	b2, err := openLoadBoard(path, -1, -1, true)
	if err != nil || b2.ino != ino {
		t.Fatalf("keep: got inode %v (%v), want the board there (%d)", b2, err, ino)
	}
	b2.f.Close()
	// ...a truncated one, a FIFO or a symlink is replaced by a new file.
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, make([]byte, proto.LoadBoardSize), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, mk := range map[string]func() error{
		"truncated": func() error { return os.Truncate(path, 100) },
		"fifo":      func() error { os.Remove(path); return syscall.Mkfifo(path, 0o600) },
		"symlink":   func() error { os.Remove(path); return os.Symlink(target, path) },
		"hardlink":  func() error { os.Remove(path); return os.Link(target, path) },
	} {
		if err := mk(); err != nil {
			t.Fatal(name, err)
		}
		nb, err := openLoadBoard(path, -1, -1, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st, err := os.Lstat(path)
		if err != nil || !st.Mode().IsRegular() || st.Size() != proto.LoadBoardSize {
			t.Errorf("%s: board after open: %v, %v; want a regular file of %d bytes", name, st, err, proto.LoadBoardSize)
		}
		if tst, _ := os.Stat(target); err == nil && os.SameFile(st, tst) {
			t.Errorf("%s: the board is the link's target", name)
		}
		nb.f.Close()
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o644 {
		t.Errorf("the link's target changed mode to %v", st.Mode().Perm())
	}
	// A board that another user owns is not the workers': replaced too.
	if os.Getuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	nb, err := openLoadBoard(path, os.Getuid(), os.Getgid(), true)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
		t.Errorf("a board owned by another user was kept: %v, %v", st, err)
	}
	nb.f.Close()
	b.close() // its inode is gone: it must not remove the newer board
	if _, err := os.Stat(path); err != nil {
		t.Errorf("close of an older board removed the newer one: %v", err)
	}
}
