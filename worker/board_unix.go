//go:build unix

package worker

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapBoard maps the load board at path, shared, or returns nil if it is
// not a regular file of LoadBoardSize bytes that this process may write.
func mapBoard(path string) []byte {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close() // the mapping outlives it
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != LoadBoardSize {
		return nil
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, LoadBoardSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return mem
}

// processAlive reports whether pid names a process: one this process may
// not signal (another user's) counts as alive.
func processAlive(pid int) bool {
	return unix.Kill(pid, 0) != unix.ESRCH
}
