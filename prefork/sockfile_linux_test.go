package prefork

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func boundUnix(t *testing.T) (*Listener, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "nsfd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	l, err := Bind(context.Background(), ListenSpec{Network: "unix", Address: path, Mode: 0o600, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

// replace puts a regular file where the socket file was, as a user who can
// write the directory might.
func replace(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestListenerCloseRemovesItsOwnSocketFile(t *testing.T) {
	l, path := boundUnix(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file still there after Close: %v", err)
	}
}

func TestListenerCloseLeavesAReplacedFile(t *testing.T) {
	l, path := boundUnix(t)
	replace(t, path)
	err := l.Close()
	if !errors.Is(err, ErrReplaced) {
		t.Errorf("Close = %v; want ErrReplaced", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious\n" {
		t.Fatalf("the file put in the socket's place: %q, %v", b, err)
	}
}

func TestListenerCloseLeavesAnotherSocket(t *testing.T) {
	l, path := boundUnix(t)
	os.Remove(path)
	other, err := Bind(context.Background(), ListenSpec{Network: "unix", Address: path, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := l.Close(); !errors.Is(err, ErrReplaced) {
		t.Errorf("Close = %v; want ErrReplaced", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the other listener's socket file is gone: %v", err)
	}
}

// A symlink swapped in for the socket file must not lead a reload's mode
// and owner change to the file it points to.
func TestListenerAdjustLeavesAReplacedFile(t *testing.T) {
	l, path := boundUnix(t)
	defer l.Close()
	target := filepath.Join(filepath.Dir(path), "target")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	spec := l.Spec
	spec.Mode = 0o666
	if err := l.Adjust(spec); !errors.Is(err, ErrReplaced) {
		t.Errorf("Adjust = %v; want ErrReplaced", err)
	}
	fi, err := os.Stat(target)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("symlink target mode %v, %v; want it untouched at 0600", fi.Mode(), err)
	}
}

func TestListenerAdjustChangesItsOwnSocketFile(t *testing.T) {
	l, path := boundUnix(t)
	defer l.Close()
	spec := l.Spec
	spec.Mode = 0o640
	if err := l.Adjust(spec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Perm() != 0o640 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket file mode %v, %v; want a socket at 0640", fi.Mode(), err)
	}
}
