package pgtest

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// enterNetNS moves the calling thread, which must be locked to its
// goroutine, into the network namespace at path, so that what it starts
// (the server) runs there. leave moves it back and unlocks it; if it
// cannot, the thread stays locked and ends with its goroutine. With path
// "", it only unlocks.
func enterNetNS(path string) (leave func(), err error) {
	if path == "" {
		return runtime.UnlockOSThread, nil
	}
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		orig.Close()
		return nil, fmt.Errorf("pgtest: network namespace: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		orig.Close()
		return nil, fmt.Errorf("pgtest: enter network namespace %s: %w", path, err)
	}
	return func() {
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}, nil
}
