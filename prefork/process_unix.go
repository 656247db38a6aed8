//go:build unix

package prefork

import (
	"os"
	"strconv"
	"syscall"
)

const sigTerm = syscall.SIGTERM

// killGroup sends SIGKILL to the worker's process group, so what it forked dies with it.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		return syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// exitInfo returns the exit code (-1 if signalled) and the signal name.
func exitInfo(st *os.ProcessState) (int, string) {
	if st == nil {
		return -1, ""
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return st.ExitCode(), ""
}

func describeExit(code int, sig string) string {
	if sig != "" {
		return "signal " + sig
	}
	return "status " + strconv.Itoa(code)
}
