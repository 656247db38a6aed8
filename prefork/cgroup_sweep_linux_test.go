package prefork

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sweepBase makes an empty directory in the cgroup2 hierarchy for a sweep
// test, removed at its end.
func sweepBase(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make control groups")
	}
	mounts, err := cgroupMounts()
	if err != nil || mounts[""] == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	base := filepath.Join(mounts[""], "nsfd-sweeptest-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Skipf("cannot make a control group: %v", err)
	}
	t.Cleanup(func() { _ = removeTree(base, time.Now().Add(5*time.Second)) })
	return base
}

// deadPID is a pid that names no process here: what another pid
// namespace's master looks like from this one.
func deadPID(t *testing.T) int {
	for pid := 4194000; pid < 4194300; pid++ {
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			return pid
		}
	}
	t.Skip("no free pid")
	return 0
}

// TestSweepSparesAMasterSettingUp: a master makes its master/ group and
// then moves into it; a sweep that looks in between sees the group empty.
// The root's lock, taken before the master makes anything, says it is
// alive; an unlocked root with an empty master/ group is swept. (The pid is
// one that names no process here, as a master's in another pid namespace.)
func TestSweepSparesAMasterSettingUp(t *testing.T) {
	base := sweepBase(t)
	setting := filepath.Join(base, strconv.Itoa(deadPID(t)))
	lock, err := lockRoot(setting, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := os.Mkdir(filepath.Join(setting, "master"), 0o755); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(base, strconv.Itoa(deadPID(t)+1))
	if syscall.Kill(deadPID(t)+1, 0) != syscall.ESRCH {
		t.Skip("no second free pid")
	}
	if err := os.MkdirAll(filepath.Join(dead, "master"), 0o755); err != nil {
		t.Fatal(err)
	}

	sweepStale(base, base, rootName())
	if _, err := os.Stat(filepath.Join(setting, "master")); err != nil {
		t.Errorf("the root of a master setting up (locked) was swept: %v", err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the root of a dead master (unlocked, master/ empty) is still there: %v", err)
	}
}

// TestLockRootWaitsForASweepAndRemakesTheRoot: a master whose root a sweep
// locked first waits for the lock, and makes the root anew when the sweep
// removed it, holding the lock on the new one.
func TestLockRootWaitsForASweepAndRemakesTheRoot(t *testing.T) {
	base := sweepBase(t)
	root := filepath.Join(base, strconv.Itoa(deadPID(t)))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	sweep, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(sweep.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	var lock *os.File
	go func() {
		var err error
		lock, err = lockRoot(root, time.Now().Add(10*time.Second))
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("lockRoot returned while a sweep held the lock: %v", err)
	case <-time.After(50 * time.Millisecond): // it is waiting (it may not return sooner)
	}
	if err := syscall.Rmdir(root); err != nil {
		t.Fatal(err)
	}
	sweep.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if !sameFile(lock, root) {
		t.Fatal("lockRoot holds a lock on a removed root")
	}
	other, _ := os.Open(root)
	defer other.Close()
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		t.Fatal("the new root is not locked")
	}
}
