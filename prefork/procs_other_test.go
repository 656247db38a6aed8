//go:build !linux

package prefork

import "errors"

// sameOpenFile needs kcmp(2), which only Linux has.
func sameOpenFile(pid, fd, own int) (bool, error) { return false, errors.ErrUnsupported }
