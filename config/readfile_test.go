package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readSoon runs readFile and fails the test if it does not return within a
// few seconds: the master must never block on a file.
func readSoon(t *testing.T, path string, as RunAs) ([]byte, error) {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := readFile(path, as)
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("readFile(%s) blocks", path)
		return nil, nil
	}
}

func TestReadFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.ini")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock.ini")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Mkdir(filepath.Join(dir, "dir.ini"), 0o755)
	os.Symlink("/dev/zero", filepath.Join(dir, "zero.ini"))
	os.Symlink("fifo.ini", filepath.Join(dir, "linked-fifo.ini"))
	os.Symlink("nowhere", filepath.Join(dir, "dangling.ini"))
	for name, want := range map[string]string{
		"fifo.ini":        "not a regular file: it is a FIFO (named pipe)",
		"linked-fifo.ini": "not a regular file: it is a FIFO (named pipe)",
		"sock.ini":        "not a regular file: it is a socket",
		"dir.ini":         "not a regular file: it is a directory",
		"zero.ini":        "not a regular file: it is a character device",
	} {
		_, err := readSoon(t, filepath.Join(dir, name), CurrentUser())
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
		if e := readError(name, err); e.Error() != name+": "+want {
			t.Errorf("%s: reported as %q", name, e)
		}
	}
	if _, err := readSoon(t, filepath.Join(dir, "dangling.ini"), CurrentUser()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dangling link: %v", err)
	}
}

func TestReadFileCapsTheSize(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.ini")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(10 << 30) // 10 GiB, sparse
	f.Close()
	_, err = readSoon(t, big, CurrentUser())
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "larger than 1 MiB (10737418240 bytes)") {
		t.Errorf("10 GiB file: %v", err)
	}
	edge := filepath.Join(dir, "edge.ini")
	os.WriteFile(edge, make([]byte, MaxFileSize), 0o644)
	if data, err := readSoon(t, edge, CurrentUser()); err != nil || len(data) != MaxFileSize {
		t.Errorf("a file of exactly 1 MiB: %d bytes, %v", len(data), err)
	}
}

func TestReadFileWaitsForTheWriterToClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.ini")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("command = /bin/true\n")
	if _, err := readSoon(t, path, CurrentUser()); !errors.Is(err, ErrBeingWritten) {
		t.Errorf("a file open for writing: %v, want ErrBeingWritten", err)
	}
	w.WriteString("user = nobody\n")
	w.Close()
	data, err := readSoon(t, path, CurrentUser())
	if err != nil || string(data) != "command = /bin/true\nuser = nobody\n" {
		t.Errorf("after the close: %q, %v", data, err)
	}
	// A reader does not count.
	r, _ := os.Open(path)
	defer r.Close()
	if _, err := readSoon(t, path, CurrentUser()); err != nil {
		t.Errorf("a file open for reading: %v", err)
	}
}

func TestReadFileRereadsAFileThatChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.ini")
	os.WriteFile(path, []byte("half"), 0o644)
	writes := 0
	afterRead = func(string) {
		if writes == 0 {
			os.WriteFile(path, []byte("half and the rest"), 0o644)
		}
		writes++
	}
	defer func() { afterRead = func(string) {} }()
	data, err := readFile(path, CurrentUser())
	if err != nil || string(data) != "half and the rest" || writes != 2 {
		t.Errorf("got %q, %v after %d reads; want the whole file, read twice", data, err, writes)
	}

	// Replaced by rename while it was read: the new file is read.
	writes = 0
	afterRead = func(string) {
		if writes == 0 {
			tmp := path + ".tmp"
			os.WriteFile(tmp, []byte("renamed"), 0o644)
			os.Rename(tmp, path)
		}
		writes++
	}
	if data, err := readFile(path, CurrentUser()); err != nil || string(data) != "renamed" {
		t.Errorf("replaced while read: %q, %v", data, err)
	}

	// Changing every time: given up on, not read forever.
	afterRead = func(string) {
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString("x")
		f.Close()
	}
	if _, err := readFile(path, CurrentUser()); !errors.Is(err, ErrChanging) {
		t.Errorf("a file that never stops changing: %v", err)
	}
}

func TestEtcThatIsAFIFODoesNotBlock(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "etc")
	if err := syscall.Mkfifo(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- CheckAs(fifo, RunAs{UID: 1000}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Check of a FIFO etc: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Check of a FIFO etc blocks")
	}
}
