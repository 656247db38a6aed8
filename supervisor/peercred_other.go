//go:build darwin || freebsd

package supervisor

import "golang.org/x/sys/unix"

// peerCred is who is at the other end of a control connection.
type peerCred struct {
	Uid, Gid uint32
}

// getPeerCred asks the kernel who connected on fd (LOCAL_PEERCRED: the
// effective uid and groups, the first being the effective gid), or nil.
func getPeerCred(fd int) *peerCred {
	xc, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil || xc.Ngroups < 1 {
		return nil
	}
	return &peerCred{Uid: xc.Uid, Gid: xc.Groups[0]}
}
