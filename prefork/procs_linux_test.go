package prefork

import (
	"context"
	"os"
	"strconv"
	"strings"
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

// TestPumpHoldsThreeDescriptorsAWorker: a worker costs the master its two
// output pipes and one pidfd, whichever way it was spawned; the handle a
// pool gets holds none (an os.Process held a second pidfd).
func TestPumpHoldsThreeDescriptorsAWorker(t *testing.T) {
	p, err := OpenPump()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devNull(); err != nil { // opened once, by the first spawn
		t.Fatal(err)
	}
	for _, direct := range []bool{false, true} {
		if direct && !directSpawn {
			continue
		}
		before := pidfds(t)
		s := newStreams()
		var procs []*Process
		for range 4 {
			c := Command{
				Argv: []string{exe, ShimArg, "--", "/bin/sleep", "1000"}, Env: os.Environ(),
				Output: s.output, Exited: s.onExit, Owner: t,
			}
			if direct {
				c.Direct = &DirectExec{Command: []string{"/bin/sleep", "1000"}, Exec: ExecOptions{Umask: -1, UID: -1, GID: -1}, PPID: os.Getpid()}
			}
			proc, err := p.Start(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			procs = append(procs, proc)
		}
		// Its pipes are two; the pidfd is the one an os.Process would add
		// again. Counted by kind, so that what else the test binary opens
		// or closes meanwhile does not count.
		if n := len(pidfds(t)) - len(before); n != len(procs) {
			t.Errorf("direct %v: %d pidfds for %d workers, want 1 each", direct, n, len(procs))
		}
		for _, proc := range procs {
			_ = killGroup(proc.Pid)
			<-s.exited
		}
		for _, proc := range procs {
			if _, err := proc.Wait(); err != nil {
				t.Error(err)
			}
		}
		p.Drop(t)
	}
}

// pidfds lists this process's pidfd descriptors.
func pidfds(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.Contains(l, "pidfd") {
			fd, _ := strconv.Atoi(e.Name())
			out = append(out, fd)
		}
	}
	return out
}
