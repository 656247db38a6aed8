//go:build !linux

package supervisor

import (
	"errors"
	"os"
)

// encodeHandover: an upgrade in place is Linux only (memfd, pidfds).
func encodeHandover(*Handover) (*os.File, error) {
	return nil, errors.New("in-place upgrade: Linux only")
}
