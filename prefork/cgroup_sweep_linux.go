package prefork

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sweeping what dead masters left. Without systemd every master has a
// cgroup2 root named after its pid (nsfd/PID) and, on a hybrid host, a v1
// root of the same name in each hierarchy it uses; a master killed with
// SIGKILL leaves them, with whatever its workers' children still run in
// them. Each master sweeps them as it starts (sweepStale).
//
// Whether a master is gone cannot be read from its pid: a master in another
// pid namespace (a container, a benchmark's isolated master) has a pid that
// means nothing here. Nor from its master/ group alone: a master makes that
// group, then moves into it, and a sweep that looked in between took a
// master setting up for a dead one and killed it (CI saw a master SIGKILLed
// as it started beside another). So each master holds an exclusive flock
// on its cgroup2 root for its life (lockRoot), taken before it makes or
// joins anything below it; the lock goes with the master's last descriptor
// of it, that is with the master (it is close-on-exec: an upgrade's exec
// drops it and the new image takes it again, while the master, in master/
// all along, shows as alive). A sweep takes the same lock, without waiting,
// before it judges a root: a root locked by someone is alive; a root it
// could lock is gone if its master/ group holds no process (without that
// group, if the pid names no process here either). A master whose root a
// sweep locked first waits, then finds its root removed and makes it anew.

// lockRoot makes dir, the master's cgroup2 root, and takes the lock on it,
// retrying until deadline while a sweep holds it.
func lockRoot(dir string, deadline time.Time) (*os.File, error) {
	for {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("make control group: %w", err)
		}
		f, err := os.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("open control group: %w", err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil && sameFile(f, dir):
			return f, nil
		case err != nil && !errors.Is(err, unix.EWOULDBLOCK):
			f.Close()
			return nil, fmt.Errorf("lock control group %s: %w", dir, err)
		}
		f.Close() // a sweep holds it, or has removed it: make it anew
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock control group %s: held by another process", dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameFile says whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// unlock releases the master's lock on its root.
func (c *Cgroups) unlock() {
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

// rootName names the master's roots: its pid as /proc names it. A master in
// a pid namespace of its own whose /proc is still the host's (the
// benchmarks' isolated masters) is pid 1 to itself but not in /proc, where
// the other masters look, and two such masters would share one root; in a
// container with its own /proc the two agree.
func rootName() string {
	if s, err := os.Readlink("/proc/self"); err == nil {
		if _, err := strconv.Atoi(s); err == nil {
			return s
		}
	}
	return strconv.Itoa(os.Getpid())
}

// sweepStale kills and removes the groups in dir of masters that are gone
// (named after their pid: rootName): what a killed master left. The lock
// and the master/ group are read in the cgroup2 hierarchy (v2dir, the same
// names). self is the caller's own root's name.
func sweepStale(dir, v2dir, self string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() || e.Name() == self {
			continue
		}
		root := filepath.Join(v2dir, e.Name())
		f, err := os.Open(root)
		if err == nil && unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue // its master holds it: alive, or setting up
		}
		if masterGone(root, pid) {
			d := filepath.Join(dir, e.Name())
			killTreeDirs(d)
			_ = removeTree(d, time.Now().Add(2*time.Second))
		}
		if f != nil {
			f.Close()
		}
	}
}

// masterGone says whether the master whose cgroup2 root is dir (and whose
// pid, in whatever namespace it ran, was pid) is gone, once the caller holds
// the root's lock: its master/ group holds no process. Without that group
// (a master killed before it made it), the pid must name no process here
// either.
func masterGone(dir string, pid int) bool {
	if b, err := readControl(filepath.Join(dir, "master", "cgroup.events")); err == nil {
		return !strings.Contains(string(b), "populated 1")
	}
	return syscall.Kill(pid, 0) != nil
}
