//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/config"
)

// TestNotifyAccessAll: shell workers running as nobody report through
// systemd-notify, a child of the worker. With notify_access = all its
// READY=1 makes the worker ready and the daemon running; with main it is
// ignored (the worker stays starting) and the log says notify_access = all
// would accept it; a process of another daemon cannot make a worker ready.
// Both with control groups (the sender's group names its worker, a
// double-forked one too) and without (its parent chain does).
func TestNotifyAccessAll(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the workers as nobody")
	}
	notify, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify is not installed (Debian: apt-get install systemd): it is the child that reports here")
	}
	containModes(t, func(t *testing.T, e *env) {
		os.Chmod(e.dir, 0o755) // nobody must reach the notify sockets under var/run
		conf := func(script, extra string) string {
			return "command = /bin/sh -c '" + script + "; exec sleep 1000'\nport = 127.0.0.1:0\nuser = nobody\n" +
				"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n" + extra
		}
		const starting = "type = notify\nready_timeout = 2m\n"
		e.write("shell.ini", conf(notify+` --ready --status="from a child"; echo shell sent $?`, starting+"notify_access = all\n"))
		// Double-forked: its parent exits, so it is reparented to the master.
		e.write("forked.ini", conf("( ( "+notify+" --ready; echo forked sent $? ) & )", starting+"notify_access = all\n"))
		e.write("mainonly.ini", conf(notify+" --ready; echo mainonly sent $?", starting))
		e.write("target.ini", conf("true", starting+"notify_access = all\n"))
		target := filepath.Join(e.dir, "var", "run", config.NotifyDirName, "target.sock")
		e.write("intruder.ini", conf("NOTIFY_SOCKET="+target+" "+notify+" --ready; echo intruder sent $?", "notify_access = all\n"))
		e.start()
		e.waitReady()

		waitFor(t, "shell running, made ready by systemd-notify", 20*time.Second, func() bool {
			d := e.status().daemon("shell")
			return d != nil && d.State == "running" && len(d.Workers) == 1 && d.Workers[0].State == "idle"
		})
		// systemd-notify returns once the master has handled what it sent
		// (it waits on BARRIER=1): by then its READY=1 has been judged.
		for _, who := range []string{"shell", "mainonly", "intruder", "forked"} {
			waitFor(t, who+"'s systemd-notify done", 20*time.Second, func() bool { return strings.Contains(e.log(), who+" sent 0") })
		}
		waitFor(t, "the hint for mainonly", 10*time.Second, func() bool {
			return strings.Contains(e.log(), "notify_access = all would accept it")
		})
		if n := strings.Count(e.log(), "notify_access = all would accept it"); n != 1 {
			t.Errorf("the hint logged %d times, want once (mainonly's one worker)", n)
		}
		st := e.status()
		for _, name := range []string{"mainonly", "target"} {
			d := st.daemon(name)
			if d == nil || len(d.Workers) != 1 || d.Workers[0].State != "starting" {
				t.Errorf("%s: %+v, want one worker still starting", name, d)
			}
		}
		// With control groups a double-forked sender is still in its
		// worker's group. Without, it may have left the worker's parent
		// chain by the time the master looks (it is then ignored): no
		// assertion there.
		if d := st.daemon("forked"); os.Getenv("NSFD_CGROUPS") != "off" && (d == nil || d.State != "running") {
			t.Errorf("forked: %+v, want running: a double-forked sender is in its worker's control group", d)
		}
		if out, _, _ := e.nsfd("status", "shell"); !strings.Contains(out, "from a child") {
			t.Errorf("STATUS= from systemd-notify not shown:\n%s", out)
		}
	})
}
