//go:build unix

package prefork

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	// portable-master opens a Portable backend, starts a pool-silent
	// worker on it, prints the worker's pid and waits to be killed.
	testHelpers["portable-master"] = func() {
		b, err := OpenPortable()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		exe, _ := os.Executable()
		proc, err := b.Start(context.Background(), Command{
			Argv: []string{exe}, Env: append(os.Environ(), "NSFD_TEST_HELPER=pool-silent"),
			Exited: func(*Process) {}, Owner: "master",
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(proc.Pid)
		select {}
	}
	// portable-master-dies-forking starts a worker through the shim and
	// prints its pid, then hangs before it tells the keeper: a master
	// killed there has forked a worker the keeper only knows of from the
	// shim itself.
	testHelpers["portable-master-dies-forking"] = func() {
		b, err := OpenPortable()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b.started = func(pid int) {
			fmt.Println(pid)
			select {}
		}
		exe, _ := os.Executable()
		_, err = b.Start(context.Background(), Command{
			Argv: []string{exe, ShimArg, "--", exe}, Shim: true, Env: append(os.Environ(), "NSFD_TEST_HELPER=pool-silent"),
			Exited: func(*Process) {}, Owner: "master",
		})
		fmt.Fprintln(os.Stderr, "Start returned:", err)
		os.Exit(1)
	}
}

// TestPortableKeepsTheProcsContract: the portable backend does what a pool
// needs of a process backend.
func TestPortableKeepsTheProcsContract(t *testing.T) {
	b, err := OpenPortable()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testProcsContract(t, b)
}

// TestPortableKilledMasterLeavesNoWorker: with no parent-death signal, the
// keeper kills the workers of a master killed with SIGKILL.
func TestPortableKilledMasterLeavesNoWorker(t *testing.T) {
	t.Parallel()
	killMasterOfOneWorker(t, "portable-master")
}

// TestPortableMasterKilledAsItForksLeavesNoWorker: a master killed after it
// forked a worker but before it told the keeper leaves no worker either:
// the shim told the keeper itself.
func TestPortableMasterKilledAsItForksLeavesNoWorker(t *testing.T) {
	t.Parallel()
	killMasterOfOneWorker(t, "portable-master-dies-forking")
}

// killMasterOfOneWorker starts the test helper master, reads the pid of its
// worker, kills the master with SIGKILL and waits for the worker to die.
func killMasterOfOneWorker(t *testing.T, helper string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	master := exec.Command(exe)
	master.Env = append(os.Environ(), "NSFD_TEST_HELPER="+helper, "GORACE=atexit_sleep_ms=0")
	out, err := master.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	master.Stderr = os.Stderr
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = master.Process.Kill()
		_ = master.Wait()
		t.Fatalf("no worker pid from the master: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Fatalf("worker %d is not running", pid)
	}
	if err := master.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = master.Wait()
	waitFor(t, "the worker to die with its master", 10*time.Second, func() bool { return !alive(pid) })
}

// alive reports whether pid runs (and is no zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: signal 0 said it exists
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestKeeperKillsWhatIsLeft: at the lifeline's end the keeper kills the
// groups of the workers it was told of and not told are gone.
func TestKeeperKillsWhatIsLeft(t *testing.T) {
	t.Parallel()
	var killed []int
	runKeeper(strings.NewReader("+100\n+200\n-100\n+300\nbogus\n+1\n-\n"), func(pid int) { killed = append(killed, pid) })
	if len(killed) != 2 || !(killed[0] == 200 && killed[1] == 300 || killed[0] == 300 && killed[1] == 200) {
		t.Errorf("killed %v, want 200 and 300", killed)
	}
}

// TestOpenBackendFollowsTheEnvironment: NSFD_PROCESS_BACKEND picks the
// backend whatever nsfd.ini says, and an unknown name is an error that
// names the variable.
func TestOpenBackendFollowsTheEnvironment(t *testing.T) {
	t.Setenv(EnvProcessBackend, "portable")
	b, name, err := OpenBackend(BackendPump)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, ok := b.(*Portable); !ok || name != BackendPortable {
		t.Errorf("NSFD_PROCESS_BACKEND=portable opened %T (%q)", b, name)
	}
	t.Setenv(EnvProcessBackend, "kqueue")
	if _, _, err := OpenBackend(""); err == nil || !strings.Contains(err.Error(), `NSFD_PROCESS_BACKEND="kqueue": unknown process backend`) {
		t.Errorf("NSFD_PROCESS_BACKEND=kqueue: %v", err)
	}
}

// TestShimTellsTheKeeperOfItself: given the lifeline (NSFD_KEEPER_FD), the
// shim writes its own "+pid" there before it execs the program, which gets
// neither the descriptor nor the variable.
func TestShimTellsTheKeeperOfItself(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(exe, ShimArg, "--", "/bin/sh", "-c",
		`echo "${NSFD_KEEPER_FD-unset}"; if [ -e /dev/fd/3 ]; then echo open; else echo closed; fi`)
	cmd.Env = append(os.Environ(), keeperFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	out, err := cmd.Output()
	w.Close()
	if err != nil {
		t.Fatalf("shim: %v", err)
	}
	if got := string(out); got != "unset\nclosed\n" {
		t.Errorf("the program saw %q, want neither the variable nor fd 3", got)
	}
	line, err := io.ReadAll(r) // EOF: the program's exec closed the shim's copy
	if err != nil {
		t.Fatal(err)
	}
	if want := "+" + strconv.Itoa(cmd.Process.Pid) + "\n"; string(line) != want {
		t.Errorf("the lifeline got %q, want %q", line, want)
	}
}
