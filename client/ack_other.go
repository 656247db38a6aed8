//go:build !linux

package client

import (
	"net"
	"time"
)

// setAckTimeout does nothing where TCP_USER_TIMEOUT is not available: a
// cut-off node's calls fail when the caller's context ends.
func setAckTimeout(net.Conn, time.Duration) error { return nil }
