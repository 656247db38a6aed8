package worker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The Python example worker speaks the same protocol as Serve: this runs it
// the way the master does (fd 3, LISTEN_PID = its pid, NOTIFY_SOCKET).
func TestWorkerPythonEcho(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	script, err := filepath.Abs("../examples/python/echo.py")
	if err != nil {
		t.Fatal(err)
	}
	l := wtTCPListener(t)
	notes := wtListenNotify(t)
	p := wtStart(t, []string{python, script}, []*os.File{wtInheritable(t, l)}, true,
		"LISTEN_FDS=1", "LISTEN_FDNAMES=echo", "NOTIFY_SOCKET="+notes.path)

	notes.expect(t, NotifyReady)
	if got, want := p.line(t), fmt.Sprintf("python echo worker %d ready", p.cmd.Process.Pid); got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	for i := range 2 {
		c := wtDial(t, "tcp", l.Addr().String())
		c.roundTrip(t, fmt.Sprint("hello ", i))
		c.roundTrip(t, " spaces\tand CR\r")
		notes.expect(t, NotifyBusy)
		c.Close()
		notes.expect(t, NotifyIdle)
	}

	// SIGTERM with a connection in progress: the worker says it stops,
	// closes the connection and exits 0.
	c := wtDial(t, "tcp", l.Addr().String())
	c.roundTrip(t, "last")
	notes.expect(t, NotifyBusy)
	p.signal(t, syscall.SIGTERM)
	notes.expect(t, NotifyStopping, NotifyIdle)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("connection after SIGTERM: %v, want EOF", err)
	}
	p.wait(t)
	notes.expectNone(t)
}
