package pgtest

import "syscall"

// sysProcAttr runs the server as cred in a process group of its own, and
// makes it quit when the test process dies (a parent-death signal).
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
}
