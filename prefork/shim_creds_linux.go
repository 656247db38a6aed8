package prefork

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// setCredentials switches the shim to groups, gid and uid (-1: unchanged),
// real, effective and saved alike. A change of credentials clears the
// parent-death signal: it is set again, and the shim leaves at once if the
// master (ppid, 0: unknown) died in between.
func setCredentials(uid, gid int, groups []int, ppid int) error {
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if gid >= 0 {
		if err := unix.Setresgid(gid, gid, gid); err != nil {
			return fmt.Errorf("setgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := unix.Setresuid(uid, uid, uid); err != nil {
			return fmt.Errorf("setuid %d: %w", uid, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set parent-death signal: %w", err)
	}
	if ppid > 0 && os.Getppid() != ppid {
		return errors.New("master is gone")
	}
	return nil
}
