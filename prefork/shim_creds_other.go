//go:build unix && !linux

package prefork

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// setCredentials switches the shim to groups, gid and uid (-1: unchanged):
// setgid and setuid as root set the real, effective and saved ids alike.
// There is no parent-death signal to set again: the portable backend's
// keeper ends the worker with its master whatever its user.
func setCredentials(uid, gid int, groups []int, _ int) error {
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if gid >= 0 {
		if err := unix.Setgid(gid); err != nil {
			return fmt.Errorf("setgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := unix.Setuid(uid); err != nil {
			return fmt.Errorf("setuid %d: %w", uid, err)
		}
	}
	return nil
}

// closeInherited marks every fd past the listeners close-on-exec, up to
// the descriptor limit: the worker starts with 0, 1, 2 and its LISTEN_FDS
// listeners from 3, and nothing the master inherited. (No close_range on
// every system: one fcntl a descriptor, the few that are open.)
func closeInherited() error {
	var rl unix.Rlimit
	limit := 1024
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur > 0 && rl.Cur < 1<<20 {
		limit = int(rl.Cur)
	}
	for fd := 3 + listenFDs(); fd < limit; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("close inherited descriptors: fd %d: %w", fd, err)
		}
	}
	return nil
}
