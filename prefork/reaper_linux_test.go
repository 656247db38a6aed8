package prefork

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestReaperKillsAndReapsOrphansNotWorkers: a worker that setsid's and
// double-forks leaves an orphan, which the master (a subreaper) adopts;
// KillTree kills it with the worker's group, the reaper reaps it, and the
// worker's own exit status is still the pool's to collect.
func TestReaperKillsAndReapsOrphansNotWorkers(t *testing.T) {
	tk, ok := testProcs.(TreeKiller)
	if !ok {
		t.Skipf("the %s backend has no reaper of orphans", testBackend)
	}
	tok := strconv.Itoa(os.Getpid()) + "7"
	exited := make(chan *Process, 1)
	exe, _ := os.Executable()
	proc, err := testProcs.Start(context.Background(), Command{
		Argv:   []string{exe, ShimArg, "--", "/bin/sh", "-c", "setsid sh -c 'sleep 1000 0." + tok + " &'; sleep 1000 & wait"},
		Env:    os.Environ(),
		Exited: func(p *Process) { exited <- p },
		Owner:  t,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer testProcs.Drop(t)
	orphan := 0
	waitFor(t, "the orphan adopted by the test process", 10*time.Second, func() bool {
		for _, pid := range children() {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if bytes.HasPrefix(b, []byte("sleep\x00")) && bytes.Contains(b, []byte("0."+tok)) {
				orphan = pid
				return true
			}
		}
		return false
	})
	if err := tk.KillTree(proc.Pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the orphan killed and reaped", 10*time.Second, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(orphan))
		return os.IsNotExist(err)
	})
	p := <-exited
	st, err := p.Wait()
	if err != nil {
		t.Fatalf("the worker's status was taken: %v", err)
	}
	if ws := st; !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("worker ended with %v, want SIGKILL", st)
	}
}

// sharedReaper is the orphan reaper of the tests' process backend; it skips
// t on a backend without one.
func sharedReaper(t *testing.T) *reaper {
	t.Helper()
	if _, ok := testProcs.(TreeKiller); !ok {
		t.Skipf("the %s backend has no reaper of orphans", testBackend)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.r
}

// TestReaperKnowsExactlyTheUnreapedWorkers: a pass of the orphan reaper
// tells workers from orphans by its record of workers alone (no /proc read
// a child, which made a pass cost tens of milliseconds at 1000 workers and
// held every spawn meanwhile): a worker is in it from its fork until its
// pool reaps it, and a pass never takes a live worker for an orphan.
func TestReaperKnowsExactlyTheUnreapedWorkers(t *testing.T) {
	r := sharedReaper(t)
	known := func(pid int) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.known[pid]
	}
	exited := make(chan *Process, 2)
	exe, _ := os.Executable()
	var procs []*Process
	for range 2 {
		proc, err := testProcs.Start(context.Background(), Command{
			Argv:   []string{exe, ShimArg, "--", "/bin/sleep", "1000"},
			Env:    os.Environ(),
			Exited: func(p *Process) { exited <- p },
			Owner:  t,
		})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, proc)
	}
	defer testProcs.Drop(t)
	r.spawnMu.Lock()
	orphans := r.orphans()
	r.spawnMu.Unlock()
	for _, p := range procs {
		if !known(p.Pid) {
			t.Errorf("worker %d is not in the reaper's record", p.Pid)
		}
		for _, o := range orphans {
			if o == p.Pid {
				t.Errorf("worker %d taken for an orphan", p.Pid)
			}
		}
	}
	for _, p := range procs {
		p.Kill()
		if _, err := (<-exited).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		if known(p.Pid) {
			t.Errorf("worker %d still in the reaper's record after its reaping", p.Pid)
		}
	}
}

// TestChildrenListsEveryChild: children reads every thread's children file
// (a child is listed under the thread that forked it), and readProc reads
// a /proc file whole whatever the buffer it is given.
func TestChildrenListsEveryChild(t *testing.T) {
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for range 20 {
		c := exec.Command("/bin/sleep", "1000")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	got := map[int]bool{}
	for _, pid := range children() {
		got[pid] = true
	}
	for _, c := range cmds {
		if !got[c.Process.Pid] {
			t.Fatalf("child %d not listed (%d listed)", c.Process.Pid, len(got))
		}
	}
	want, err := os.ReadFile("/proc/self/maps") // larger than 16 bytes, stable between reads
	if err != nil {
		t.Fatal(err)
	}
	b, err := readProc("/proc/self/maps", make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < len(want)/2 || !bytes.HasPrefix(b, want[:64]) {
		t.Errorf("readProc read %d bytes of /proc/self/maps, want about %d", len(b), len(want))
	}
}

// TestReaperWaitsForNoSpawn: a reaper pass that finds a spawn under way (a
// preloaded worker's fork waits up to 10 s for its fork-server) tries again
// later instead of queueing for the lock, where it would stop every other
// spawn behind it; the orphan is reaped once the spawn is done.
func TestReaperWaitsForNoSpawn(t *testing.T) {
	r := sharedReaper(t)

	r.spawnMu.RLock() // a slow spawn
	held := true
	defer func() {
		if held {
			r.spawnMu.RUnlock()
		}
	}()
	// An orphan in the making: a child of the test outside its process
	// group, which exits and raises SIGCHLD.
	tries := r.tries.Load()
	orphan := exec.Command("/bin/true")
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	pid := orphan.Process.Pid
	orphan.Process.Release()
	waitFor(t, "the child to exit", 10*time.Second, func() bool {
		st, err := statFields(pid)
		return err != nil || string(st[0]) == "Z"
	})
	// Another spawn's turn must not wait for the slow one.
	waitFor(t, "a reaper pass to have tried", 10*time.Second, func() bool { return r.tries.Load() > tries })
	got := make(chan struct{})
	go func() {
		r.spawnMu.RLock()
		close(got) // while holding it: a spawn got its turn
		r.spawnMu.RUnlock()
	}()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("a spawn waited behind the reaper, which waited behind a slow spawn")
	}
	r.spawnMu.RUnlock()
	held = false
	waitFor(t, "the orphan reaped after the slow spawn", 10*time.Second, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return os.IsNotExist(err)
	})
}
