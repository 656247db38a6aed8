package prefork

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readControl reads a file of any size (a cgroup.procs of thousands of
// pids is longer than its first buffer); both name the path on an error.
func TestControlFiles(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 511, 512, 513, 40000} {
		p := filepath.Join(dir, "f")
		want := bytes.Repeat([]byte("7\n"), size)[:size]
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readControl(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("size %d: got %d bytes, %v", size, len(got), err)
		}
	}
	p := filepath.Join(dir, "w")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeControl(p, "max 100000"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "max 100000" {
		t.Errorf("written: %q", b)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := readControl(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("read of a missing file: %v", err)
	}
	if err := writeControl(missing, "1"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("write to a missing file: %v", err)
	}
}
