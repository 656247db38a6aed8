package fleettest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` mounts the namespaces it names.
const netnsDir = "/var/run/netns"

// nsPrefix starts the name of every namespace a fleet makes.
const nsPrefix = "nsft"

// ip runs ip(8) with args.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nsPath is the file of namespace ns.
func nsPath(ns string) string { return filepath.Join(netnsDir, ns) }

// inNS runs fn on a thread in network namespace ns, on a goroutine of its
// own, and waits for it.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		leave, err := enter(ns)
		if err != nil {
			errc <- err
			return
		}
		defer leave()
		errc <- fn()
	}()
	return <-errc
}

// enter moves the calling thread, locked to its goroutine, into ns. leave
// moves it back and unlocks it; if it cannot, the thread stays locked, and
// ends with its goroutine.
func enter(ns string) (leave func(), err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("fleettest: %w", err)
	}
	f, err := os.Open(nsPath(ns))
	if err != nil {
		orig.Close()
		return nil, fmt.Errorf("fleettest: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		orig.Close()
		return nil, fmt.Errorf("fleettest: enter %s: %w", ns, err)
	}
	return func() {
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}, nil
}

// startIn starts cmd in namespace ns, with a parent-death signal (SIGKILL)
// so that a test process that dies leaves nothing behind, and returns a
// channel closed when it has exited (its state is in cmd.ProcessState then).
// The thread that started it waits for it: the signal fires when that
// thread ends.
func startIn(ns string, cmd *exec.Cmd) (<-chan struct{}, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		leave, err := enter(ns)
		if err != nil {
			started <- err
			return
		}
		defer leave()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// dialIn dials address from namespace ns: the socket belongs to ns
// whichever thread uses it afterwards.
func dialIn(ctx context.Context, ns, network, address string) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// nsInode is the inode of namespace ns, which /proc/PID/ns/net links to
// for its processes.
func nsInode(ns string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(nsPath(ns), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// pidsIn lists the live processes in the namespace of inode ino.
func pidsIn(ino uint64) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue // this process's threads visit namespaces
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil || st.Ino != ino {
			continue
		}
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// killAll SIGKILLs every process in namespace ns and waits until they are
// gone, for at most d; it returns those left.
func killAll(ns string, d time.Duration) []int {
	ino, err := nsInode(ns)
	if err != nil {
		return nil
	}
	deadline := time.Now().Add(d)
	for {
		pids := pidsIn(ino)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// removeStale deletes the namespaces of fleets whose test process is gone
// (a test binary killed before its cleanup ran): their processes died with
// it (parent-death signals), their links go with the namespaces.
func removeStale() {
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(name, "x")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		killAll(e.Name(), 5*time.Second)
		_ = ip("netns", "del", e.Name())
	}
}
