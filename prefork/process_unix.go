//go:build unix

package prefork

import (
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// openDevNull opens /dev/null; a variable so a test can count the opens.
var openDevNull = func() (*os.File, error) { return os.Open(os.DevNull) }

// devNull is every worker's stdin, opened once for the master's life:
// os/exec opens /dev/null anew for each process started without a Stdin.
// It is never closed (close-on-exec, so an upgrade's exec drops it).
var devNull = sync.OnceValues(func() (*os.File, error) { return openDevNull() })

// workerStdin is a worker's stdin: the shared /dev/null, or nil (os/exec
// then opens its own) if it cannot be opened.
func workerStdin() io.Reader {
	if f, err := devNull(); err == nil {
		return f
	}
	return nil
}

const sigTerm = syscall.SIGTERM

// killGroup sends SIGKILL to the worker's process group, so what it forked dies with it.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		return syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// exitInfo returns the exit code (-1 if signalled or unknown: err, the
// wait's error) and the signal name.
func exitInfo(ws syscall.WaitStatus, err error) (int, string) {
	switch {
	case err != nil:
		return -1, ""
	case ws.Signaled():
		return -1, ws.Signal().String()
	}
	return ws.ExitStatus(), ""
}

func describeExit(code int, sig string) string {
	if sig != "" {
		return "signal " + sig
	}
	return "status " + strconv.Itoa(code)
}
