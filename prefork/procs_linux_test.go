package prefork

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// sameOpenFile tells whether process pid's descriptor fd and this
// process's descriptor own are one open file description (kcmp(2)).
func sameOpenFile(pid, fd, own int) (bool, error) {
	const kcmpFile = 0
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(pid), kcmpFile, uintptr(own), uintptr(fd), 0)
	if errno != 0 {
		return false, errno
	}
	return r == 0, nil
}

// TestPumpKeepsTheProcsContract: the Linux backend does what a pool needs
// of a process backend.
func TestPumpKeepsTheProcsContract(t *testing.T) {
	p, err := OpenPump()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	testProcsContract(t, p)
}
