package logging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// File and directory modes of the log file.
const (
	fileMode = 0o640
	dirMode  = 0o750
)

// fileTarget appends records to a file, reopens it on request and rotates it
// by size. Each batch of records is one write(2) (two or more if the file is
// rotated within it), unbuffered: what the writer goroutine has taken from
// the buffer and written survives a crash of the master.
type fileTarget struct {
	path     string
	maxSize  int64 // rotate when a record would grow the file past it; 0: never
	maxFiles int   // rotated files kept
	f        *os.File
	size     int64
}

var _ batchTarget = (*fileTarget)(nil)

// openFileTarget creates path's directory and opens path for appending.
func openFileTarget(path string, maxSize int64, maxFiles int) (*fileTarget, error) {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	t := &fileTarget{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := t.open(); err != nil {
		return nil, err
	}
	return t, nil
}

// open opens t.path and sets t.f and t.size; on error t is unchanged.
func (t *fileTarget) open() error {
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log file: %w", err)
	}
	t.f, t.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past maxSize
// (a file holds at least one record, however large). A failed rotation does
// not keep p from being written: it comes back as a warning, and is tried
// again once another maxSize bytes have been written.
func (t *fileTarget) Write(_ *entry, p []byte) error {
	var rotErr error
	if t.maxSize > 0 && t.size > 0 && t.size+int64(len(p)) > t.maxSize {
		if rotErr = t.rotate(); rotErr != nil {
			t.size = 0
		}
	}
	n, err := t.f.Write(p)
	t.size += int64(n)
	if err != nil {
		return err
	}
	if rotErr != nil {
		return warning{rotErr}
	}
	return nil
}

// WriteBatch appends the records in p, ending at ends, with one write(2) for
// each run of them that fits in the file: the batch is split where a record
// would take the file past maxSize, and the file rotated there, as Write
// does for one record, so a file holds as much as with one write a record.
func (t *fileTarget) WriteBatch(p []byte, ends []int) (int, error) {
	var rotErr error
	done, start := 0, 0 // records written; where the first unwritten one starts
	for done < len(ends) {
		k := len(ends) // the run is records done..k-1
		if t.maxSize > 0 {
			if t.size > 0 && t.size+int64(ends[done]-start) > t.maxSize {
				if err := t.rotate(); err != nil {
					rotErr, t.size = err, 0
				}
			}
			k = done + 1 // at least one record, however large
			for k < len(ends) && t.size+int64(ends[k]-start) <= t.maxSize {
				k++
			}
		}
		n, err := t.f.Write(p[start:ends[k-1]])
		t.size += int64(n)
		if err != nil {
			return done + recordsIn(ends[done:k], start+n), err
		}
		done, start = k, ends[k-1]
	}
	if rotErr != nil {
		return done, warning{rotErr}
	}
	return done, nil
}

// Reopen opens the file at the path again, after logrotate renamed it. If
// that fails, records keep going to the file already open.
func (t *fileTarget) Reopen() error {
	old := t.f
	if err := t.open(); err != nil {
		return err
	}
	return old.Close()
}

// Close closes the file.
func (t *fileTarget) Close() error { return t.f.Close() }

// rotate shifts path.N-1 to path.N, ..., path to path.1, dropping the oldest,
// and opens a new file at path. A failed rename does not stop it: the new file
// is opened whatever happens, so logging goes on.
func (t *fileTarget) rotate() error {
	var errs []error
	name := func(i int) string { return t.path + "." + strconv.Itoa(i) }
	if err := os.Remove(name(t.maxFiles)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for i := t.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Rename(t.path, name(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := t.Reopen(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	return nil
}
