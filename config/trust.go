package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrUntrusted is wrapped by the error for a configuration file that a
// non-root user could write while nsfd runs as root: the file says what
// commands to run, so it would let that user run commands as root.
var ErrUntrusted = errors.New("refused")

// runningAsRoot reports whether the trust check applies; a variable so
// tests can run the check as another user.
var runningAsRoot = func() bool { return os.Geteuid() == 0 }

// checkTrusted refuses, when nsfd runs as root, a file owned by another
// user, or writable by a group other than root's or by everyone.
func checkTrusted(fi fs.FileInfo) error {
	if !runningAsRoot() {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	mode := fi.Mode().Perm()
	var who string
	switch {
	case st.Uid != 0:
		who = fmt.Sprintf("its owner uid %d", st.Uid)
	case mode&0o002 != 0:
		who = "every user"
	case mode&0o020 != 0 && st.Gid != 0:
		who = fmt.Sprintf("group gid %d", st.Gid)
	default:
		return nil
	}
	return fmt.Errorf("%w: writable by %s (mode %04o, owner %d:%d); nsfd runs as root and would run what it says as root: chown root and chmod go-w",
		ErrUntrusted, who, mode, st.Uid, st.Gid)
}
