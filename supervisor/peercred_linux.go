package supervisor

import "golang.org/x/sys/unix"

// peerCred is who is at the other end of a control connection.
type peerCred struct {
	Uid, Gid uint32
}

// getPeerCred asks the kernel who connected on fd (SO_PEERCRED), or nil.
func getPeerCred(fd int) *peerCred {
	uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil
	}
	return &peerCred{Uid: uc.Uid, Gid: uc.Gid}
}
