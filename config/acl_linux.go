package config

import "golang.org/x/sys/unix"

// hasACL tells whether path has a POSIX access control list, which may
// grant more than its mode bits show.
func hasACL(path string) bool {
	n, err := unix.Getxattr(path, "system.posix_acl_access", nil)
	return err == nil && n > 0
}
