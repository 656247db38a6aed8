//go:build linux

package main

// End-to-end tests of the command line as a user types it (issue 16): flags
// anywhere, short usage errors, did-you-mean, exit codes, run on a missing
// etc/, the console, status reasons, --wait, logs NAME, the call probe and
// completion.

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nsfdRaw runs the binary with exactly args (no --etc put first).
func nsfdRaw(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, er syncBuffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), er.String(), code
}

func TestCLIWithoutMaster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))

	// Did you mean, short usage errors, exit 2.
	_, errOut, code := e.nsfd("stat")
	if code != 2 || !strings.Contains(errOut, `did you mean "status"?`) || strings.Count(errOut, "\n") > 2 {
		t.Errorf("nsfd stat: exit %d\n%s", code, errOut)
	}
	_, errOut, code = e.nsfd("scale", "echo")
	if code != 2 || strings.Count(errOut, "\n") != 2 || !strings.Contains(errOut, "see `nsfd scale --help`") {
		t.Errorf("nsfd scale echo: exit %d, want a two-line usage error\n%s", code, errOut)
	}
	// --version, help VERB = VERB --help.
	out, _, code := nsfdRaw(t, nil, "--version")
	if code != 0 || !strings.HasPrefix(out, "nsfd ") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	h1, _, _ := nsfdRaw(t, nil, "help", "status")
	h2, _, _ := nsfdRaw(t, nil, "status", "--help")
	if h1 != h2 || !strings.Contains(h1, "nsfd status echo --json") {
		t.Errorf("help status and status --help differ or lack the examples:\n%s\n---\n%s", h1, h2)
	}
	// --etc after the verb and its arguments; the master is not running: 3.
	_, errOut, code = nsfdRaw(t, nil, "status", "echo", "--json", "--etc", e.etc)
	if code != 3 || !strings.Contains(errOut, "cannot reach the master") {
		t.Errorf("status echo --json --etc DIR without a master: exit %d %q", code, errOut)
	}
	_, errOut, code = nsfdRaw(t, nil, "check", "--etc", e.etc)
	if code != 0 {
		t.Errorf("check --etc DIR: exit %d %q", code, errOut)
	}
	// check: a missing program, two daemons on one port.
	e.write("gone.ini", "command = /nonexistent/prog\nport = 127.0.0.1:7199\n")
	e.write("twin.ini", "command = /bin/sh\nport = 127.0.0.1:7199\n")
	_, errOut, code = e.nsfd("check")
	if code != 1 || !strings.Contains(errOut, `gone.ini:1: key "command": program /nonexistent/prog: no such file or directory`) ||
		!strings.Contains(errOut, `twin.ini:2: key "port": tcp 127.0.0.1:7199 is also a listener of `+filepath.Join(e.etc, "gone.ini")) {
		t.Errorf("check of a missing program and a shared port: exit %d\n%s", code, errOut)
	}
	os.Remove(filepath.Join(e.etc, "gone.ini"))
	os.Remove(filepath.Join(e.etc, "twin.ini"))
	// Completion falls back to etc/'s files.
	out, _, _ = nsfdRaw(t, nil, "__complete", "--etc", e.etc, "status", "")
	if !strings.HasPrefix(out, "echo\n") {
		t.Errorf("completion of a daemon name without a master:\n%s", out)
	}
	// logs of an unknown daemon: exit 4.
	if _, errOut, code := e.nsfd("logs", "nope"); code != 4 || !strings.Contains(errOut, `no daemon "nope"`) {
		t.Errorf("logs nope: exit %d %q", code, errOut)
	}

	// run on a missing etc/: refused at once, nothing created.
	dir := t.TempDir()
	missing := filepath.Join(dir, "etc")
	_, errOut, code = nsfdRaw(t, nil, "run", "--etc", missing)
	if code != 1 || !strings.Contains(errOut, missing+" does not exist") {
		t.Errorf("run --etc missing: exit %d %q", code, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("run --etc missing created %v", ents)
	}
}

func TestCLIAgainstMaster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 2\nmax_servers = 4\n"))
	e.write("bad.ini", "command = /nonexistent/prog\nport = 127.0.0.1:0\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\nstart_retries = 2\nbackoff_initial = 10ms\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e.write("busy.ini", "command = /bin/sleep 1000\nport = "+busy.Addr().String()+"\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	m.addr("echo")
	e.waitReady()
	waitFor(t, "bad to go fatal", 20*time.Second, func() bool {
		d := e.status().daemon("bad")
		return d != nil && d.State == "fatal"
	})
	waitFor(t, "2 echo workers", 15*time.Second, func() bool { return len(e.pids("echo")) == 2 })

	// Flags anywhere, as the help shows them.
	js, errOut, code := nsfdRaw(t, nil, "status", "echo", "--json", "--etc", e.etc)
	var st statusJSON
	if code != 0 || json.Unmarshal([]byte(js), &st) != nil || st.daemon("echo") == nil {
		t.Errorf("status echo --json --etc DIR: exit %d %q\n%s", code, errOut, js)
	}
	// A running daemon: 0, with its columns.
	out, _, code := e.nsfd("status", "echo")
	if code != 0 || !strings.Contains(out, "DAEMON") || !strings.Contains(out, "2/4") {
		t.Errorf("status echo: exit %d\n%s", code, out)
	}
	// Fatal: 3, with the reason (the exec error).
	out, _, code = e.nsfd("status", "bad")
	if code != 3 || !strings.Contains(out, "fatal") || !strings.Contains(out, "reason: failed-start") || !strings.Contains(out, "/nonexistent/prog") {
		t.Errorf("status bad: exit %d\n%s", code, out)
	}
	// A daemon whose address is in use: waiting for it, with the error; 3.
	out, _, code = e.nsfd("status", "busy")
	if code != 3 || !strings.Contains(out, "waiting") || !strings.Contains(out, "address already in use") {
		t.Errorf("status busy: exit %d\n%s", code, out)
	}
	// No such daemon: 4.
	if _, errOut, code := e.nsfd("status", "nope"); code != 4 || !strings.Contains(errOut, "no such daemon") {
		t.Errorf("status nope: exit %d %q", code, errOut)
	}
	// Completion asks the master.
	out, _, _ = e.nsfd("__complete", "restart", "")
	for _, want := range []string{"bad\n", "busy\n", "echo\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("completion lacks %q:\n%s", want, out)
		}
	}

	// --wait: restart returns once the old workers are gone.
	old := e.pids("echo")
	out, errOut, code = e.nsfd("restart", "echo", "--wait", "--timeout", "30s")
	if code != 0 || !strings.Contains(out, "echo: running") {
		t.Fatalf("restart --wait: exit %d %q %q", code, out, errOut)
	}
	now := e.pids("echo")
	for pid := range old {
		if now[pid] {
			t.Errorf("restart --wait returned with old worker %d still listed", pid)
		}
	}
	if _, _, code := e.nsfd("stop", "echo", "--wait"); code != 0 {
		t.Fatal("stop --wait failed")
	}
	if d := e.status().daemon("echo"); d.State != "stopped" {
		t.Errorf("after stop --wait: %s", d.State)
	}
	if _, _, code := e.nsfd("start", "--wait", "echo"); code != 0 {
		t.Fatal("start --wait failed")
	}
	if d := e.status().daemon("echo"); d.State != "running" {
		t.Errorf("after start --wait: %s", d.State)
	}
	addr := strings.Fields(e.status().daemon("echo").Listeners[0])[1]
	if out, errOut, code := e.nsfd("scale", "echo", "-1", "--wait"); code != 0 || !strings.Contains(out, "min_servers 1, max_servers 3") {
		t.Errorf("scale echo -1 --wait: exit %d %q %q", code, out, errOut)
	}
	// start --wait on a daemon that cannot start: 3, with the reason.
	_, errOut, code = e.nsfd("start", "bad", "--wait", "--timeout", "20s")
	if code != 3 || !strings.Contains(errOut, "fatal") {
		t.Errorf("start bad --wait: exit %d %q", code, errOut)
	}

	// call on a daemon that does not speak the protocol: fast and clear.
	began := time.Now()
	_, errOut, code = e.nsfd("call", "echo", "get", "--timeout", "30s")
	if took := time.Since(began); code != 1 || !strings.Contains(errOut, "does not speak the framework protocol") || took > 10*time.Second {
		t.Errorf("call echo: exit %d after %s %q", code, took, errOut)
	}
	echo(t, addr, "still serving")

	// logs NAME, --since, --level.
	out, _, code = e.nsfd("logs", "bad", "-n", "-1")
	if code != 0 || !strings.Contains(out, "/nonexistent/prog") || strings.Contains(out, "nsfd.echo:") {
		t.Errorf("logs bad: exit %d\n%s", code, out)
	}
	out, _, code = e.nsfd("logs", "--level", "error", "--since", "1h")
	if code != 0 || !strings.Contains(out, "[ERROR]") || strings.Contains(out, "[INFO]") {
		t.Errorf("logs --level error --since 1h: exit %d\n%s", code, out)
	}
	if out, _, code := e.nsfd("logs", "--since", "2000-01-01T00:00:00Z", "-n", "1"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("logs --since TIME -n 1: exit %d\n%s", code, out)
	}
	if out, _, _ := e.nsfd("logs", "--since", "1h", "--level", "error", "echo"); strings.Contains(out, "[INFO]") {
		t.Errorf("logs echo --level error shows info records:\n%s", out)
	}
	// The master, not on a terminal, printed nothing on stdout.
	if strings.Contains(m.out.String(), "daemon(s) on") {
		t.Errorf("the master printed its console without a terminal:\n%s", m.out.String())
	}
}

// The console: forced with NSFD_CONSOLE=1 (a pipe is not a terminal), the
// start-up summary and then the errors of the central log.
func TestRunConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), "run", "--etc", e.etc)
	cmd.Env = append(os.Environ(), "NSFD_CONSOLE=1")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	waitFor(t, "the summary", 15*time.Second, func() bool { return strings.Contains(out.String(), "control: ") })
	s := out.String()
	for _, want := range []string{"1 daemon(s) on " + e.etc, "echo", "running", "tcp 127.0.0.1:", "log: " + e.logFile()} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	e.write("broken.ini", "command = /bin/true\nbogus_key = 1\n")
	waitFor(t, "the error on the console", 15*time.Second, func() bool { return strings.Contains(out.String(), "bogus_key") })
}

// On a real terminal (a pty, through util-linux's script) the master prints
// its console without being told to; under a service manager it does not.
func TestRunConsoleOnATerminal(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("no script(1) to give the master a terminal")
	}
	for _, tc := range []struct {
		env  []string
		want bool
	}{{nil, true}, {[]string{"INVOCATION_ID=x"}, false}} {
		e := newEnv(t)
		e.write("echo.ini", echoConf("min_servers = 1\nmax_servers = 2\n"))
		cmd := exec.Command("script", "-qfec", filepath.Join(binDir, "nsfd")+" run --etc "+e.etc, "/dev/null")
		cmd.Env = append(os.Environ(), "NSFD_CONSOLE=", "INVOCATION_ID=", "NOTIFY_SOCKET=")
		cmd.Env = append(cmd.Env, tc.env...)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		e.waitReady()
		waitFor(t, "echo running", 15*time.Second, func() bool {
			d := e.status().daemon("echo")
			return d != nil && d.State == "running"
		})
		if tc.want {
			waitFor(t, "the summary on the terminal", 15*time.Second, func() bool { return strings.Contains(out.String(), "control: ") })
		}
		// SIGTERM to the master itself (script passes no signal on).
		st := e.status()
		syscall.Kill(st.PID, syscall.SIGTERM)
		cmd.Wait()
		if got := strings.Contains(out.String(), "control: "); got != tc.want {
			t.Errorf("env %v: console printed %v, want %v:\n%s", tc.env, got, tc.want, out.String())
		}
	}
}
