//go:build linux && cgo

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsfd/nsfd/prefork"
)

// The C fast path of the exec shim (shim_fast_linux.c) must leave the worker
// exactly as the Go shim does: same pid, LISTEN_PID and WATCHDOG_PID, working
// directory and umask, same command found on PATH; whatever it does not
// handle, and every failure, the Go shim takes over.
func TestShimFastPathMatchesGoShim(t *testing.T) {
	nsfd := filepath.Join(binDir, "nsfd")
	dir := t.TempDir()
	script := `echo "pid=$$ listen=$LISTEN_PID watchdog=$WATCHDOG_PID cwd=$(pwd) umask=$(umask) nofile=$(ulimit -n)"`
	run := func(goShim bool, flags ...string) (string, error) {
		args := append([]string{prefork.ShimArg, "-ppid", "1"}, flags...)
		args = append(args, "--", "sh", "-c", script)
		cmd := exec.Command(nsfd, args...)
		cmd.Env = append(os.Environ(), "WATCHDOG_USEC=1000000", "LISTEN_PID=", "NSFD_SHIM_GO=0")
		if goShim {
			cmd.Env = append(cmd.Env, "NSFD_SHIM_GO=1")
		}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, flags := range [][]string{
		nil,
		{"-cwd", dir},
		{"-cwd", dir, "-umask", "027"},
		{"-umask", "0"},
		{"-rlimit", "nofile=1000"}, // the Go shim's alone
		{"-cwd", dir, "-rlimit", "nofile=1000", "-umask", "077"}, // handed over midway
	} {
		fast, err := run(false, flags...)
		if err != nil {
			t.Fatalf("%v: %v: %s", flags, err, fast)
		}
		slow, err := run(true, flags...)
		if err != nil {
			t.Fatalf("%v (Go shim): %v: %s", flags, err, slow)
		}
		var pid string
		for _, f := range strings.Fields(fast) {
			if v, ok := strings.CutPrefix(f, "pid="); ok {
				pid = v
			}
		}
		if pid == "" || !strings.Contains(fast, "listen="+pid+" ") || !strings.Contains(fast, "watchdog="+pid+" ") {
			t.Errorf("%v: LISTEN_PID and WATCHDOG_PID are not the worker's pid: %s", flags, fast)
		}
		// Everything but the pid is the same.
		strip := func(s string) string {
			return strings.NewReplacer(pid, "PID").Replace(s)
		}
		slowPid := strings.Fields(slow)[0][len("pid="):]
		if strip(fast) != strings.NewReplacer(slowPid, "PID").Replace(slow) {
			t.Errorf("%v: fast path and Go shim differ:\n fast: %s\n   go: %s", flags, fast, slow)
		}
	}
	// A relative working directory, a missing command: the Go shim reports.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-cwd", "relative/dir", "--", "true"}, "chdir"},
		{[]string{"--", "nsfd-no-such-command"}, "not found"},
		{[]string{"--", dir}, "is a directory"},
	} {
		cmd := exec.Command(nsfd, append([]string{prefork.ShimArg, "-ppid", "1"}, c.args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: err %v, output %q; want a failure saying %q", c.args, err, out, c.want)
		}
	}
}
