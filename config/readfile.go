package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// MaxFileSize bounds every file the configuration is read from (nsfd.ini,
// daemon files, env_file): a larger one is refused, not read.
const MaxFileSize = 1 << 20

// readAttempts is how often a file that changes while it is read is read
// before the load gives up on it.
const readAttempts = 3

// Errors wrapped by the error of a file that cannot be read.
var (
	// ErrNotRegular: the path names a FIFO, a device, a directory or a
	// socket. nsfd never opens those: a FIFO would block the master.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is larger than MaxFileSize.
	ErrTooLarge = errors.New("larger than 1 MiB")
	// ErrBeingWritten: another process has the file open for writing. The
	// file is read once it has been closed.
	ErrBeingWritten = errors.New("still open for writing by another process; it is read once closed")
	// ErrChanging: the file changed each time it was read.
	ErrChanging = errors.New("changed while it was read, again and again")
)

// Seams for tests: beingWritten tells whether another process has f open
// for writing (writers_linux.go); afterRead runs between reading a file and
// checking that it did not change meanwhile.
var (
	beingWrittenFunc = beingWritten
	afterRead        = func(path string) {}
)

// readFile reads a file the configuration comes from, so that no file can
// make the master block, run out of memory, or apply half of a file:
//
//   - only a regular file is opened (after its symbolic links are
//     resolved), never a FIFO or a device; it is opened non-blocking
//     without following a link at its last step, and the descriptor is
//     checked again after the open;
//   - a file over MaxFileSize is refused, and no more than that is read
//     even if it grows;
//   - when the master runs as root, a file that another user could write,
//     or could replace through one of its directories, is refused;
//   - a file another process has open for writing is not read
//     (ErrBeingWritten);
//   - a file that changed while it was read (size, times or inode differ
//     before and after, or the path names another file now) is read again.
//
// Errors are *fs.PathError naming path and wrapping one of the errors
// above, ErrUntrusted or the system's.
func readFile(path string, as RunAs) ([]byte, error) {
	for range readAttempts {
		data, again, err := readOnce(path, as)
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if !again {
			return data, nil
		}
	}
	return nil, &fs.PathError{Op: "read", Path: path, Err: ErrChanging}
}

// readOnce reads path once; again reports that it changed meanwhile.
func readOnce(path string, as RunAs) (data []byte, again bool, err error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, false, unwrapPath(err)
	}
	before, err := os.Lstat(real)
	if err != nil {
		return nil, false, unwrapPath(err)
	}
	if err := checkRegular(before); err != nil {
		return nil, false, err
	}
	if before.Size() > MaxFileSize {
		return nil, false, fmt.Errorf("%w (%d bytes)", ErrTooLarge, before.Size())
	}
	if err := checkTrusted(before, as); err != nil {
		return nil, false, err
	}
	if err := checkParents(path, real, as, whyConfig); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, true, nil // replaced by a link since the check
	}
	if err != nil {
		return nil, false, unwrapPath(err)
	}
	defer f.Close()
	opened, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if !os.SameFile(before, opened) {
		return nil, true, nil // replaced since the check
	}
	if beingWrittenFunc(f) {
		return nil, false, ErrBeingWritten
	}
	data, err = io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > MaxFileSize {
		return nil, false, fmt.Errorf("%w (it grew while it was read)", ErrTooLarge)
	}
	afterRead(path)
	after, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(after, now) || changed(opened, after) || int64(len(data)) != after.Size() {
		return nil, true, nil
	}
	return data, false, nil
}

// changed tells whether a file's size or times differ between two stats of it.
func changed(a, b fs.FileInfo) bool {
	if a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) {
		return true
	}
	sa, oka := a.Sys().(*syscall.Stat_t)
	sb, okb := b.Sys().(*syscall.Stat_t)
	return oka && okb && ctime(sa) != ctime(sb)
}

// checkRegular refuses anything but a regular file, saying what it is.
func checkRegular(fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%w: it is %s", ErrNotRegular, kindOf(fi.Mode()))
}

// kindOf names the type of a file that is not regular.
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// unwrapPath strips the *fs.PathError of an os call, whose path readFile's
// own error names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readError is the error of a file that cannot be read.
func readError(path string, err error) *Error {
	err = unwrapPath(err)
	switch {
	case errors.Is(err, ErrUntrusted), errors.Is(err, ErrNotRegular), errors.Is(err, ErrTooLarge),
		errors.Is(err, ErrBeingWritten), errors.Is(err, ErrChanging):
		return &Error{File: path, Msg: err.Error(), Err: err}
	}
	return &Error{File: path, Msg: "cannot read: " + err.Error(), Err: err}
}
