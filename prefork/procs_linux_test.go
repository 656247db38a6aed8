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
		// again. Counted by the pid each refers to, so that what else the
		// test binary opens or closes meanwhile (an earlier test's process
		// reaped now, its pidfd closed) does not count.
		for _, proc := range procs {
			if n := pidfdsOf(t, proc.Pid); n != 1 {
				t.Errorf("direct %v: worker %d has %d pidfds in the master, want 1", direct, proc.Pid, n)
			}
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

// pidfdsOf counts this process's pidfd descriptors that refer to pid (the
// "Pid:" line of their fdinfo).
func pidfdsOf(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || !strings.Contains(l, "pidfd") {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		for line := range strings.SplitSeq(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok && strings.TrimSpace(v) == strconv.Itoa(pid) {
				n++
			}
		}
	}
	return n
}
