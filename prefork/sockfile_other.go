//go:build unix && !linux

package prefork

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ErrReplaced is wrapped by the errors of a listener whose socket file was
// replaced since it was bound (by a regular file, a symlink, another
// socket): the master neither changes nor removes what is now at the path.
var ErrReplaced = errors.New("socket file replaced since bind")

// sockFile is the file of a bound UNIX socket as it was right after bind,
// by device and inode. Without Linux's O_PATH descriptors the master checks
// the file at the path and then changes it by name, without following a
// symlink: a swap between the two is not caught.
type sockFile struct {
	path     string
	dev, ino uint64
}

// bindUnix binds a UNIX socket of network "unix" (stream) or "unixgram"
// at path. Here a stream socket listens at once (no SOCK_CLOEXEC to make
// one by hand without a race with a fork), so a connect, or a datagram, in
// the moment before Bind sets the file's mode and owner meets the mode the
// umask gave it.
func bindUnix(network, path string) (*os.File, net.Addr, error) {
	if network == "unixgram" {
		pc, err := net.ListenPacket(network, path)
		if err != nil {
			return nil, nil, err
		}
		defer pc.Close()
		f, err := pc.(*net.UnixConn).File()
		return f, pc.LocalAddr(), err
	}
	l, err := net.Listen(network, path)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	f, err := ul.File()
	return f, l.Addr(), err
}

// statSocketFile records the socket file at path, which must be a socket.
func statSocketFile(path string) (sockFile, error) {
	st, err := lstatSocket(path)
	if err != nil {
		return sockFile{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return sockFile{}, fmt.Errorf("%s: %w: not a socket", path, ErrReplaced)
	}
	return sockFile{path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

func lstatSocket(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return st, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	return st, nil
}

// still reports whether the path is still the socket file.
func (s sockFile) still() error {
	st, err := lstatSocket(s.path)
	if err != nil {
		return err
	}
	if uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino {
		return ErrReplaced
	}
	return nil
}

// setMode sets the socket file's mode, and its owner unless uid and gid are
// both -1, if it is still the file bound.
func (s sockFile) setMode(mode fs.FileMode, uid, gid int) error {
	if err := s.still(); err != nil {
		return err
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, s.path, uint32(mode.Perm()), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chmod", Path: s.path, Err: err}
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(unix.AT_FDCWD, s.path, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "chown", Path: s.path, Err: err}
		}
	}
	return nil
}

// remove removes the socket file if it is still there; a file replaced
// since bind stays, and the error says so. A file already gone is no error.
func (s sockFile) remove() error {
	err := s.still()
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe) && errors.Is(pe.Err, unix.ENOENT):
		return nil
	case errors.Is(err, ErrReplaced):
		return fmt.Errorf("%w: not removing it", ErrReplaced)
	case err != nil:
		return err
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
