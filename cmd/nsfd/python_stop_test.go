//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPythonWorkerStopsWhenTermedRightAway starts examples/python/greet.py
// as nsfd would (a listener on fd 3, a notify socket of the test's own) and
// sends SIGTERM as soon as it says READY=1, that is while it is on its way
// into select: Python runs a handler between two bytecodes, so a signal that
// comes after the loop's last look at `stopping` and before select's system
// call would wait for the next connection, unless the signal itself wakes
// select (signal.set_wakeup_fd). The worker must say STOPPING=1 and exit 0
// every time.
func TestPythonWorkerStopsWhenTermedRightAway(t *testing.T) {
	py := python3(t)
	script := filepath.Join(repoDir, "examples", "python", "greet.py")
	for i := range 24 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			nsock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "n.sock"), Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer nsock.Close()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			lf, err := l.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			defer lf.Close()

			cmd := exec.Command(py, script)
			cmd.ExtraFiles = []*os.File{lf}
			cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "NOTIFY_SOCKET="+filepath.Join(dir, "n.sock"))
			out := new(strings.Builder)
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("worker output:\n%s", out)
				}
			}()

			expect := func(want string) {
				t.Helper()
				buf := make([]byte, 4096)
				nsock.SetReadDeadline(time.Now().Add(30 * time.Second))
				n, err := nsock.Read(buf)
				if err != nil {
					t.Fatalf("waiting for %s: %v", want, err)
				}
				if got := string(buf[:n]); !strings.HasPrefix(got, want) {
					t.Fatalf("notify: got %q, want %q", got, want)
				}
			}
			expect("READY=1")
			cmd.Process.Signal(syscall.SIGTERM)
			expect("STOPPING=1")
			select {
			case err := <-exited:
				exited <- err
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("still running 30s after SIGTERM")
			}
		})
	}
}
