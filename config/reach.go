package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// blocker is a directory that keeps a user from reaching a path.
type blocker struct {
	dir string
	st  *syscall.Stat_t
}

// String renders the directory with its mode and owner.
func (b *blocker) String() string {
	return fmt.Sprintf("%s (mode %04o, owner %d:%d)", b.dir, b.st.Mode&0o7777, b.st.Uid, b.st.Gid)
}

// searchBlocker returns the first directory on the way to path that a
// process with these credentials may not search (no x permission for it by
// the mode bits), or nil if it may search them all. Directories that do not
// exist yet are the master's to create, searchable; a directory with an
// access control list is not judged (hasACL), since its mode bits do not
// tell the whole story.
func searchBlocker(path string, c Creds) *blocker {
	if c.UID == 0 {
		return nil
	}
	dir := filepath.Dir(filepath.Clean(path))
	real, err := filepath.EvalSymlinks(dir)
	for errors.Is(err, fs.ErrNotExist) && dir != filepath.Dir(dir) {
		dir = filepath.Dir(dir)
		real, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil // not ours to judge: the master's own error will tell
	}
	// From / down, so that the first blocker is the one named.
	var dirs []string
	for d := real; ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || hasACL(d) {
			continue
		}
		if !permits(st, c, 0o1) {
			return &blocker{dir: d, st: st}
		}
	}
	return nil
}

// permits tells whether the mode bits of st grant perm (a bit of rwx: 4, 2
// or 1) to a process with these credentials: the owner's bits if it owns
// the file, else the group's if it is in the file's group, else the others'.
func permits(st *syscall.Stat_t, c Creds, perm uint32) bool {
	mode := uint32(st.Mode) & 0o777
	switch {
	case int(st.Uid) == c.UID:
		return mode&(perm<<6) != 0
	case int(st.Gid) == c.GID || slices.Contains(c.Groups, int(st.Gid)):
		return mode&(perm<<3) != 0
	}
	return mode&perm != 0
}

// String renders the credentials of a daemon's workers.
func (c Creds) String() string {
	s := fmt.Sprintf("uid %d, gid %d", c.UID, c.GID)
	if len(c.Groups) > 0 {
		g := make([]string, len(c.Groups))
		for i, n := range c.Groups {
			g[i] = fmt.Sprint(n)
		}
		s += ", groups " + strings.Join(g, ",")
	}
	return s
}
