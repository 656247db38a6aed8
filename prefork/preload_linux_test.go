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
