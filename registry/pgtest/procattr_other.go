//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs the server as cred in a process group of its own. There
// is no parent-death signal here: Close must stop the server.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
