//go:build !unix

package client

// peek cannot look at a socket here: every idle connection counts as open,
// and a closed one is found by the call that uses it (and retried).
func (pc *pconn) peek(fd uintptr) bool {
	pc.peekErr = nil
	return true
}
