//go:build linux

package main

// End-to-end tests of promises of docs/security.md that no other test
// enforced.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The parent-death signal survives the worker's switch to its user (a
// credential change clears it): a killed master leaves no worker behind.
func TestSecurityKilledMasterLeavesNoWorkerOfAnotherUser(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	os.Chmod(e.dir, 0o755)
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 2\nmax_servers = 3\nuser = nobody\n"))
	m := e.start()
	waitFor(t, "2 workers as nobody", 15*time.Second, func() bool {
		ws := m.workers("echo")
		return len(ws) == 2 && uidOf(t, ws[0]) == 65534 && uidOf(t, ws[1]) == 65534
	})
	pids := m.workers("echo")
	m.cmd.Process.Kill()
	<-m.exited
	waitFor(t, "the workers to die with the master", 5*time.Second, func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}

// With control_group, its members may use the control socket (mode 0660);
// any other uid is refused by the peer-credential check, and the refusal
// is logged.
func TestSecurityControlGroupMembersOnly(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	os.Chmod(e.dir, 0o755)
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\ncontrol_group = 65534\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	e.write("echo.ini", echoConf(oneWorker))
	e.start()
	e.waitReady()
	fi, err := os.Stat(filepath.Join(e.dir, "var/run/nsfd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || st.Gid != 65534 {
		t.Errorf("control socket mode %04o group %d, want 0660 and 65534", fi.Mode().Perm(), st.Gid)
	}
	if out, errOut, code := e.nsfdAsNobody("status"); code != 0 || !strings.Contains(out, "echo") {
		t.Errorf("a member of control_group: exit %d\n%s%s", code, out, errOut)
	}
	// Another uid in the group's gid but not a member by its credentials:
	// the socket's mode lets it connect, the credential check does not.
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), "--etc", e.etc, "status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4321, Gid: 4321, Groups: []uint32{65534}}}
	outb, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "uid 4321") || !strings.Contains(string(outb), "may not control this master") {
		t.Errorf("uid 4321: %v\n%s", err, outb)
	}
	waitFor(t, "the refusal in the log", 5*time.Second, func() bool {
		return strings.Contains(e.log(), "control request refused")
	})
}

// A password in the PostgreSQL DSN is masked in the log, in status and in
// errors, even in the error about a DSN that does not parse.
func TestSecurityDSNPasswordNeverShown(t *testing.T) {
	e := newEnv(t)
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[registry]\ntype = postgres\ndsn = postgres://nsfd:hunter2@[::1\n[log]\nfile = ../var/log/nsfd.log\n")
	_, errOut, code := e.nsfd("check")
	if code != 1 || strings.Contains(errOut, "hunter2") || !strings.Contains(errOut, "xxxxx") {
		t.Errorf("check of an unparseable DSN (exit %d): %s", code, errOut)
	}
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[registry]\ntype = postgres\ndsn = postgres://nsfd:hunter2@127.0.0.1:1/nsfd?connect_timeout=1\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	e.write("echo.ini", echoConf(oneWorker))
	m := e.start()
	e.waitReady()
	waitFor(t, "the registry line in the log", 10*time.Second, func() bool {
		return strings.Contains(e.log(), "registry=\"postgres postgres://nsfd:xxxxx@127.0.0.1:1/nsfd")
	})
	// A worker resolves through the master's resolver socket: it is not
	// given the DSN, nor its password (only the built-in queue is).
	waitFor(t, "the echo worker", 10*time.Second, func() bool { return len(m.workers("echo")) == 1 })
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(m.workers("echo")[0]) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if env := string(environ); strings.Contains(env, "hunter2") || !strings.Contains(env, "NSFD_RESOLVER=") {
		t.Errorf("the worker's environment:\n%s", strings.ReplaceAll(env, "\x00", "\n"))
	}
	out, errOut, _ := e.nsfd("status", "--json")
	for what, text := range map[string]string{"log": e.log(), "status": out + errOut} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("the password is in the %s:\n%s", what, text)
		}
	}
}
