package prefork

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrReplaced is wrapped by the errors of a listener whose socket file was
// replaced since it was bound (by a regular file, a symlink, another
// socket): the master neither changes nor removes what is now at the path.
var ErrReplaced = errors.New("socket file replaced since bind")

// sockFile is the file of a bound UNIX socket as it was right after bind,
// by device and inode: the master changes the mode or owner of what is at
// the path, or removes it, only while it is still that file.
type sockFile struct {
	path     string
	dev, ino uint64
}

// bindUnix binds a UNIX socket of network "unix" (stream, not yet
// listening: until it listens a connect is refused) or "unixgram" at path.
// The file is born readable and writable by its owner, the master, alone:
// bind(2) gives it the socket's own mode less the umask, and the socket's
// is set first. So nobody connects or sends to a file whose mode and owner
// Bind has not yet set.
func bindUnix(network, path string) (*os.File, net.Addr, error) {
	typ := unix.SOCK_STREAM
	if network == "unixgram" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Fchmod(fd, 0o600); err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("fchmod", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("bind", err)
	}
	return os.NewFile(uintptr(fd), path), &net.UnixAddr{Name: path, Net: network}, nil
}

// statSocketFile records the socket file at path, which must be a socket.
func statSocketFile(path string) (sockFile, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return sockFile{}, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return sockFile{}, fmt.Errorf("%s: %w: not a socket", path, ErrReplaced)
	}
	return sockFile{path: path, dev: st.Dev, ino: st.Ino}, nil
}

// open returns an O_PATH descriptor of the path if it is still the socket
// file; it never follows a symlink.
func (s sockFile) open() (int, error) {
	fd, err := unix.Open(s.path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: s.path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "fstat", Path: s.path, Err: err}
	}
	if st.Dev != s.dev || st.Ino != s.ino {
		unix.Close(fd)
		return -1, ErrReplaced
	}
	return fd, nil
}

// setMode sets the socket file's mode, and its owner unless uid and gid are
// both -1, through a descriptor of that very file: a file swapped in at the
// path is never touched.
func (s sockFile) setMode(mode fs.FileMode, uid, gid int) error {
	fd, err := s.open()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// chmod through the descriptor's /proc link reaches the inode itself
	// (fchmod refuses O_PATH descriptors).
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), uint32(mode.Perm())); err != nil {
		return &fs.PathError{Op: "chmod", Path: s.path, Err: err}
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return &fs.PathError{Op: "chown", Path: s.path, Err: err}
		}
	}
	return nil
}

// remove removes the socket file if it is still there; a file replaced
// since bind stays, and the error says so. A file already gone is no error.
func (s sockFile) remove() error {
	var st unix.Stat_t
	err := unix.Lstat(s.path, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return &fs.PathError{Op: "lstat", Path: s.path, Err: err}
	case st.Dev != s.dev || st.Ino != s.ino:
		return fmt.Errorf("%w: not removing it", ErrReplaced)
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
