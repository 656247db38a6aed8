package config

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// beingWritten tells whether any process has f open for writing: Linux
// grants a read lease (F_SETLEASE, F_RDLCK) only on a file nobody has open
// for writing. The lease is given back at once, so a writer that opens the
// file meanwhile waits for microseconds, not for the lease-break time.
// Where a lease cannot be taken (a file of another user while not root, a
// file system without leases), it answers false: the watcher's quiet
// period is then the only guard.
func beingWritten(f *os.File) bool {
	raw, err := f.SyscallConn()
	if err != nil {
		return false
	}
	busy := false
	_ = raw.Control(func(fd uintptr) {
		_, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK)
		if err == nil {
			_, _ = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
			return
		}
		busy = err == unix.EAGAIN
	})
	return busy
}

// ctime is a stat's change time.
func ctime(st *syscall.Stat_t) time.Time {
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
}
