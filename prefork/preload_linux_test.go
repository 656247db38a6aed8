package prefork

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeForkServer is the master's side of a fork-server whose other end
// the test holds.
func fakeForkServer(t *testing.T) (*forkServer, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.SetNonblock(fds[0], true)
	ctl, theirs := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "theirs")
	t.Cleanup(func() { ctl.Close(); theirs.Close() })
	self := newProcess(os.Getpid())
	return &forkServer{proc: self, ctl: ctl, rd: bufio.NewReader(ctl), done: make(chan struct{})}, theirs
}

// answer reads one request from theirs and writes reply.
func answer(t *testing.T, theirs *os.File, reply string) <-chan string {
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(theirs).ReadString('\n')
		got <- line
		theirs.Write([]byte(reply))
	}()
	return got
}

func TestAskForkReplies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct{ reply, want string }{
		{"err no memory\n", "fork-server: no memory"},
		{"ok one\n", `unexpected reply "ok one"`},
		{"what\n", `unexpected reply "what"`},
		{"ok 1\n", `unexpected reply "ok 1"`},
		// A live process that is not the master's child is refused.
		{"ok " + strconv.Itoa(os.Getppid()) + "\n", "is not the master's child"},
	} {
		fs, theirs := fakeForkServer(t)
		got := answer(t, theirs, c.reply)
		_, _, err := askFork(ctx, fs, "fork\t/a\t/b\tNSFD_WORKER=1\n")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("reply %q: err %v, want %q", c.reply, err, c.want)
		}
		if line := <-got; line != "fork\t/a\t/b\tNSFD_WORKER=1\n" {
			t.Errorf("request %q", line)
		}
		if isWorker := errors.As(err, new(*workerError)); isWorker != strings.HasPrefix(c.reply, "err ") {
			t.Errorf("reply %q: a workerError: %v", c.reply, isWorker)
		}
	}
}

func TestAskForkDeadForkServer(t *testing.T) {
	t.Parallel()
	fs, theirs := fakeForkServer(t)
	close(fs.done) // the pump saw it exit; its socket stays open
	_ = theirs
	_, _, err := askFork(context.Background(), fs, "fork\t/a\t/b\n")
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("err %v, want the fork-server's exit", err)
	}
	fs2, _ := fakeForkServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := askFork(ctx, fs2, "fork\t/a\t/b\n"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent fork-server: err %v, want the deadline", err)
	}
}

// TestPreloadBrokenForkServerIsWaitedFor: a fork-server that answers a
// fork with garbage is a failed start, retried after the back-off with no
// other event to wake the pool, and is stopped the way a retired one is:
// the pool's Stop returns only once it is gone, also when a new
// fork-server has taken its place meanwhile and it ignores SIGTERM (killed
// after graceful_timeout).
func TestPreloadBrokenForkServerIsWaitedFor(t *testing.T) {
	t.Parallel()
	if testBackend != BackendPump {
		t.Skip("preload needs the pump backend")
	}
	dir := t.TempDir()
	pidFile, second := dir+"/fs.pid", dir+"/second"
	// The first fork-server breaks the protocol at the first fork; the
	// next ones load and refuse every fork ("err": the fork-server is fine).
	script := `if [ -e ` + pidFile + ` ]; then echo ready >&$NSFD_PRELOAD_FD; : > ` + second + `; ` +
		`while read line <&$NSFD_PRELOAD_FD; do echo "err not today" >&$NSFD_PRELOAD_FD; done; exit 0; fi; ` +
		`trap "" TERM; echo $$ > ` + pidFile + `; echo ready >&$NSFD_PRELOAD_FD; read line <&$NSFD_PRELOAD_FD; ` +
		`echo garbage >&$NSFD_PRELOAD_FD; while :; do sleep 1; done`
	p, _, _ := newTestPool(t, "", func(c *Config) {
		c.Command = []string{"/bin/sh", "-c", script}
		c.Preload = true
		c.GracefulTimeout = 4 * time.Second // far longer than a loaded machine takes to start the second
		c.Policy.MinServers = 1
		c.StartRetries = 100
	})
	var pid int
	waitFor(t, "a second fork-server after the first broke the protocol", 10*time.Second, func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		_, err := os.Stat(second)
		return pid > 0 && err == nil
	})
	if !alive(pid) {
		t.Fatalf("the broken fork-server %d is gone before its graceful_timeout", pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("the broken fork-server %d still runs after the pool's Stop returned", pid)
	}
}
