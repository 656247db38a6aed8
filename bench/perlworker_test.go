package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/worker"
)

// perlWorker is bench/perl/nsfd-echo.pl started as nsfd would start it, on
// a listener and a notify socket of the test's own.
type perlWorker struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string // the listener's
	nsock  *net.UnixConn
	exited chan error
}

// startPerlWorker starts the worker with NOTIFY_SOCKET at notifyAddr (a
// path, or @name for an abstract socket); everything is torn down when the
// test ends.
func startPerlWorker(t *testing.T, perl, script, notifyAddr string) *perlWorker {
	t.Helper()
	nsock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyAddr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsock.Close() })
	l, err := prefork.Bind(context.Background(), prefork.ListenSpec{Network: "tcp", Address: "127.0.0.1:0", Backlog: 16, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	cmd := exec.Command(perl, script)
	cmd.ExtraFiles = []*os.File{l.File()}
	cmd.Env = append(envWithout(worker.EnvListenFDs, worker.EnvListenPID, worker.EnvListenFDNames, worker.EnvNotifySocket),
		worker.EnvListenFDs+"=1", worker.EnvNotifySocket+"="+notifyAddr)
	out := new(strings.Builder)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &perlWorker{t: t, cmd: cmd, addr: l.Addr.String(), nsock: nsock, exited: make(chan error, 1)}
	go func() { w.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker state before the kill:\n%s", procState(cmd.Process.Pid))
		}
		cmd.Process.Kill()
		err := <-w.exited
		w.exited <- err
		if t.Failed() {
			t.Logf("worker output:\n%s", out.String())
		}
	})
	return w
}

// expect waits for the next notify datagram and fails unless it is want.
func (w *perlWorker) expect(want string) {
	w.t.Helper()
	buf := make([]byte, 4096)
	w.nsock.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := w.nsock.Read(buf)
	if err != nil {
		w.t.Fatalf("waiting for %s: %v", want, err)
	}
	if got := string(buf[:n]); got != want {
		w.t.Fatalf("notify: got %q, want %q", got, want)
	}
}

// terminate sends SIGTERM and fails unless the worker says STOPPING=1 and
// exits with status 0 within 10 s.
func (w *perlWorker) terminate() {
	w.t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		w.t.Fatalf("SIGTERM: %v", err)
	}
	w.expect("STOPPING=1")
	select {
	case err := <-w.exited:
		w.exited <- err // for the cleanup's wait
		if err != nil {
			w.t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		w.t.Fatal("still running 10s after SIGTERM")
	}
}

// TestPerlWorkerProtocol runs bench/perl/nsfd-echo.pl as nsfd would, on a
// socket and a notify socket of the test's own, and checks that it speaks
// the worker contract: READY=1, an echo, BUSY=1 and BUSY=0 around the
// connection, STOPPING=1 and exit 0 on SIGTERM; with NOTIFY_SOCKET a path
// and an abstract @name.
func TestPerlWorkerProtocol(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("perl not found in PATH")
	}
	script := perlScript(t, "nsfd-echo.pl")
	for _, abstract := range []bool{false, true} {
		name := map[bool]string{false: "path", true: "abstract"}[abstract]
		t.Run(name, func(t *testing.T) {
			addr := filepath.Join(t.TempDir(), "n.sock")
			if abstract {
				addr = fmt.Sprintf("@nsfd-bench-perl-%d", os.Getpid())
			}
			w := startPerlWorker(t, perl, script, addr)
			w.expect("READY=1")
			c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			for _, line := range []string{"hello\n", "again\n"} {
				if _, err := io.WriteString(c, line); err != nil {
					t.Fatal(err)
				}
				got, err := r.ReadString('\n')
				if err != nil || got != line {
					t.Fatalf("echo of %q: %q, %v", line, got, err)
				}
			}
			w.expect("BUSY=1")
			c.Close()
			w.expect("BUSY=0")
			w.terminate()
		})
	}
}

// TestPerlWorkerStopsWhenTermedBeforeAccept sends SIGTERM as soon as the
// worker says BUSY=0, that is while it is on its way back into accept: Perl
// runs a safe signal's handler between two operations, so a handler that
// only sets a flag can run just before accept's system call, which then
// blocks with nothing left to interrupt it; or the signal comes just before
// accept's system call, and its handler waits for accept to return, which
// the worker bounds with SO_RCVTIMEO (ignored on the Multipath TCP listener
// Go binds by default: 1 to 5 rounds in 2,880 hung until prefork.Bind asked for
// plain TCP). The worker must exit every time.
func TestPerlWorkerStopsWhenTermedBeforeAccept(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("perl not found in PATH")
	}
	script := perlScript(t, "nsfd-echo.pl")
	for i := range 48 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			w := startPerlWorker(t, perl, script, filepath.Join(t.TempDir(), "n.sock"))
			w.expect("READY=1")
			c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			w.expect("BUSY=1")
			w.expect("BUSY=0")
			w.terminate()
		})
	}
}

// procState tells where a process is, for a test that gives up on it: its
// state and signal masks from /proc/PID/status, its wait channel, the
// system call it is in and its kernel stack.
func procState(pid int) string {
	var b strings.Builder
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(line, "State:") || strings.HasPrefix(line, "Sig") || strings.HasPrefix(line, "ShdPnd") {
				fmt.Fprintln(&b, line)
			}
		}
	}
	for _, f := range []string{"wchan", "syscall", "stack"} {
		v, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		fmt.Fprintf(&b, "%s: %s %v\n", f, strings.TrimSpace(string(v)), err)
	}
	return b.String()
}
