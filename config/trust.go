package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUntrusted is wrapped by the error for a file or directory that a
// non-root user could write while nsfd runs as root: a configuration file
// says what commands to run, so that user could run commands as root; a
// directory the master keeps its sockets in could be used to impersonate
// the master or its daemons.
var ErrUntrusted = errors.New("refused")

// Why a path must not be writable by other users, the end of a refusal.
const (
	whyConfig = "nsfd runs as root and would run what it says as root"
	whyEtc    = "nsfd runs as root and any user who can write it could add, replace or remove daemons"
	whyRunDir = "nsfd runs as root and keeps its control and notify sockets there, which another user could replace"
	whyLog    = "nsfd runs as root and writes there, where another user could plant a link to any file"
)

// writers says which non-root users besides the owner could write a file
// or directory with this status, or "" when only root can: an owner other
// than root, everyone, or a group other than root's. A directory with the
// sticky bit (/tmp) lets others add entries but not replace or remove
// those of root; stickyOK accepts that.
func writers(st *syscall.Stat_t, stickyOK bool) string {
	mode := uint32(st.Mode) & 0o7777
	sticky := stickyOK && mode&syscall.S_ISVTX != 0
	switch {
	case st.Uid != 0:
		return fmt.Sprintf("its owner uid %d", st.Uid)
	case mode&0o002 != 0 && !sticky:
		return "every user"
	case mode&0o020 != 0 && st.Gid != 0 && !sticky:
		return fmt.Sprintf("group gid %d", st.Gid)
	}
	return ""
}

// refusal is the error for path, writable by who.
func refusal(path, who string, st *syscall.Stat_t, why string) error {
	return fmt.Errorf("%w: %s is writable by %s (mode %04o, owner %d:%d); %s: chown root and chmod go-w",
		ErrUntrusted, path, who, st.Mode&0o7777, st.Uid, st.Gid, why)
}

// checkTrusted refuses, when the master runs as root, a configuration file
// owned by another user, or writable by a group other than root's or by
// everyone.
func checkTrusted(fi fs.FileInfo, as RunAs) error {
	if !as.IsRoot() {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	who := writers(st, false)
	if who == "" {
		return nil
	}
	return fmt.Errorf("%w: writable by %s (mode %04o, owner %d:%d); %s: chown root and chmod go-w",
		ErrUntrusted, who, st.Mode&0o7777, st.Uid, st.Gid, whyConfig)
}

// checkParents refuses, when the master runs as root, a path one of whose
// directories, up to /, another user could write: that user could put
// another file in its place. Both ways to the file are checked: the
// directories of path as written (a user who can write the directory of a
// symbolic link can point it elsewhere) and those of real, the path with
// every link resolved (see filepath.EvalSymlinks). Sticky directories
// (/tmp) pass: an entry of root's in them cannot be replaced by another
// user.
func checkParents(path, real string, as RunAs, why string) error {
	if !as.IsRoot() {
		return nil
	}
	for _, p := range []string{path, real} {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
			if err := checkOneDir(dir, true, why); err != nil {
				return err
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
		if p == real {
			break
		}
	}
	return nil
}

// checkOneDir refuses dir if another user could write it (see writers). A
// symbolic link passes: the directory that holds it is checked on its own,
// and where it leads is checked on the resolved path.
func checkOneDir(dir string, stickyOK bool, why string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if who := writers(st, stickyOK); who != "" {
		return refusal(dir, who, st, why)
	}
	return nil
}

// CheckDir refuses, when the master runs as root, a directory it keeps
// files in (etc/, run_dir, the notify directory, the log's directory) that
// another user could write, or one of whose parents another user could
// write; a sticky parent such as /tmp passes, the directory itself must not
// be writable by others at all. A directory that does not exist yet passes
// if its nearest existing parent would: nsfd creates what is missing as
// root. The error wraps ErrUntrusted and names the directory, its mode and
// its owner.
func CheckDir(dir string, as RunAs) error {
	return checkDir(dir, as, whyRunDir)
}

// checkDir is CheckDir with the reason a refusal gives.
func checkDir(dir string, as RunAs, why string) error {
	if !as.IsRoot() {
		return nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(dir)
	for errors.Is(err, fs.ErrNotExist) && dir != filepath.Dir(dir) {
		dir = filepath.Dir(dir) // nsfd creates the rest
		real, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return err
	}
	if err := checkOneDir(real, false, why); err != nil {
		return err
	}
	return checkParents(dir, real, as, why)
}
