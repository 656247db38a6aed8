//go:build unix

package prefork

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
			Exited: func(*os.Process) {}, Owner: "master",
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(proc.Pid)
		select {}
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
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	master := exec.Command(exe)
	master.Env = append(os.Environ(), "NSFD_TEST_HELPER=portable-master", "GORACE=atexit_sleep_ms=0")
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
