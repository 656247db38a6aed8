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
