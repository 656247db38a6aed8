//go:build linux

package main

// End-to-end tests of a hostile file system (issue 12): FIFOs, devices and
// huge files in etc/, files applied half written, directories other users
// could write, a notify socket a worker cannot reach, a command cut by an
// INI comment. Each reproduces the attack against the real binary and
// checks what an operator sees.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nsfdWithin runs a CLI command that must finish within d: one that blocks
// on a file is a failure of the test, not a hung test.
func (e *env) nsfdWithin(d time.Duration, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.nsfdCmd(d, nil, args...)
}

// nsfdAsNobody runs a CLI command as the user nobody.
func (e *env) nsfdAsNobody(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.nsfdCmd(30*time.Second, &syscall.Credential{Uid: 65534, Gid: 65534}, args...)
}

func (e *env) nsfdCmd(d time.Duration, cred *syscall.Credential, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "nsfd"), append([]string{"--etc", e.etc}, args...)...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if ctx.Err() != nil {
		e.t.Fatalf("nsfd %s did not finish within %v", strings.Join(args, " "), d)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		e.t.Fatal(err)
	}
	return o.String(), er.String(), code
}

// masterStatus is the part of the control API's status these tests read,
// asked on the control socket directly (the CLI needs a readable nsfd.ini).
type masterStatus struct {
	ConfigError string `json:"config_error"`
	Daemons     []struct {
		Name        string `json:"name"`
		State       string `json:"state"`
		ConfigError string `json:"config_error"`
		Workers     []struct {
			PID int `json:"pid"`
		} `json:"workers"`
	} `json:"daemons"`
	Errors []struct{ File, Error string } `json:"errors"`
}

func (e *env) masterStatus() masterStatus {
	e.t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(e.dir, "var/run/nsfd.sock"))
		},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://nsfd/v1/status")
	if err != nil {
		e.t.Fatalf("status (the master does not answer): %v", err)
	}
	defer resp.Body.Close()
	var st masterStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st
}

// fileError returns the error status shows for etc/NAME ("" for none).
func (st masterStatus) fileError(etc, name string) string {
	for _, fe := range st.Errors {
		if fe.File == filepath.Join(etc, name) {
			return fe.Error
		}
	}
	return ""
}

// uidOf returns the real uid of a process, from /proc/PID/status.
func uidOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("worker %d: %v", pid, err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no Uid in /proc/%d/status", pid)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func needRootForNobody(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a master running as root, workers as nobody")
	}
}

// waitFirstLoad waits for the master to have read etc/ once: what is
// written after that reaches it through the watcher.
func (e *env) waitFirstLoad() {
	e.t.Helper()
	e.waitReady()
	waitFor(e.t, "the first load", 15*time.Second, func() bool { return e.status().Reloads > 0 })
}

const oneWorker = "min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"

// Item 1: a FIFO in etc/, swapped in for an env_file or for nsfd.ini, a
// device and a 10 GiB file: nothing blocks, every one is named in an error.
func TestHostileFIFOAndDevicesNeverBlockTheMaster(t *testing.T) {
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.etc, "app.env"), []byte("A=1\n"), 0o644)
	e.write("echo.ini", echoConf(oneWorker+"env_file = app.env\n"))
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	pids := e.pids("echo")

	// mkfifo etc/x.ini, a link to a character device, a sparse 10 GiB file.
	if err := syscall.Mkfifo(filepath.Join(e.etc, "x.ini"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(e.etc, "zero.ini"))
	big, _ := os.Create(filepath.Join(e.etc, "big.ini"))
	big.Truncate(10 << 30)
	big.Close()
	out, errOut, code := e.nsfdWithin(10*time.Second, "reload")
	if code != 1 || !strings.Contains(out+errOut, "x.ini: not a regular file: it is a FIFO (named pipe)") {
		t.Errorf("nsfd reload with a FIFO in etc/ (exit %d):\n%s%s", code, out, errOut)
	}
	st := e.masterStatus()
	for name, want := range map[string]string{
		"x.ini":    "x.ini: not a regular file: it is a FIFO (named pipe)",
		"zero.ini": "zero.ini: not a regular file: it is a character device",
		"big.ini":  "big.ini: larger than 1 MiB (10737418240 bytes)",
	} {
		if got := st.fileError(e.etc, name); !strings.HasSuffix(got, want) {
			t.Errorf("status for %s: %q, want %q", name, got, want)
		}
	}
	out, errOut, code = e.nsfdWithin(10*time.Second, "status")
	if code != 1 || !strings.Contains(out, "x.ini: not a regular file: it is a FIFO (named pipe)") {
		t.Errorf("nsfd status (exit %d):\n%s%s", code, out, errOut)
	}
	_, errOut, code = e.nsfdWithin(10*time.Second, "check")
	if code != 1 || !strings.Contains(errOut, "x.ini: not a regular file: it is a FIFO (named pipe)") ||
		!strings.Contains(errOut, "zero.ini: not a regular file: it is a character device") {
		t.Errorf("nsfd check (exit %d):\n%s", code, errOut)
	}
	os.Remove(filepath.Join(e.etc, "x.ini"))
	os.Remove(filepath.Join(e.etc, "zero.ini"))
	os.Remove(filepath.Join(e.etc, "big.ini"))

	// A FIFO swapped in for the env_file: echo keeps its last good config.
	env := filepath.Join(e.etc, "app.env")
	os.Remove(env)
	syscall.Mkfifo(env, 0o644)
	e.nsfdWithin(10*time.Second, "reload")
	d := e.status().daemon("echo")
	if d == nil || !strings.Contains(d.ConfigError, `key "env_file": "app.env": not a regular file: it is a FIFO (named pipe)`) {
		t.Errorf("echo with a FIFO env_file: %+v", d)
	}
	echo(t, addr, "still serving")
	for pid := range pids {
		if !alive(pid) {
			t.Errorf("worker %d was stopped", pid)
		}
	}

	// A FIFO for nsfd.ini: the CLI says so at once, the master keeps
	// everything, answers on its socket, and SIGTERM ends it.
	ini := filepath.Join(e.etc, "nsfd.ini")
	syscall.Mkfifo(ini+".new", 0o644)
	os.Rename(ini+".new", ini)
	_, errOut, code = e.nsfdWithin(10*time.Second, "status")
	if code != 1 || !strings.Contains(errOut, "nsfd.ini: not a regular file: it is a FIFO (named pipe)") {
		t.Errorf("nsfd status with a FIFO nsfd.ini (exit %d): %s", code, errOut)
	}
	m.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the master to report nsfd.ini", 10*time.Second, func() bool {
		return strings.Contains(e.masterStatus().ConfigError, "nsfd.ini: not a regular file: it is a FIFO (named pipe)")
	})
	start := time.Now()
	if code := m.stop(); code != 0 || time.Since(start) > 10*time.Second {
		t.Errorf("SIGTERM: exit %d after %v", code, time.Since(start))
	}
}

// Item 2: a daemon file written in two pieces 0.5 s apart (`cat >>` twice)
// is applied once, whole: its worker runs as nobody from the start.
func TestHostileHalfWrittenFileIsNotApplied(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	os.Chmod(e.dir, 0o755) // nobody reaches its notify socket
	e.start()
	e.waitFirstLoad()

	path := filepath.Join(e.etc, "half.ini")
	appendTo := func(text string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}
	appendTo(echoConf(oneWorker)) // a valid daemon already, that would run as root
	time.Sleep(500 * time.Millisecond)
	appendTo("user = nobody\n")

	waitFor(t, "half to run", 15*time.Second, func() bool {
		d := e.status().daemon("half")
		return d != nil && d.State == "running" && len(d.Workers) == 1
	})
	for pid := range e.pids("half") {
		if uid := uidOf(t, pid); uid != 65534 {
			t.Errorf("worker %d runs as uid %d, want nobody", pid, uid)
		}
	}
	log := e.log()
	if n := strings.Count(log, "nsfd.half: worker started"); n != 1 {
		t.Errorf("%d workers of half started, want 1 (none from the first piece):\n%s", n, log)
	}
	if strings.Contains(log, "nsfd.half: configuration changed") {
		t.Errorf("half was applied twice (half written, then rolled)")
	}
}

// Item 2: a file still open for writing (`exec 3>>half.ini`) is not read,
// even on an explicit reload, until its writer closes it.
func TestHostileFileOpenForWritingWaitsForItsClose(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	os.Chmod(e.dir, 0o755)
	e.start()
	e.waitFirstLoad()

	path := filepath.Join(e.etc, "open.ini")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(echoConf(oneWorker))
	out, errOut, _ := e.nsfdWithin(10*time.Second, "reload")
	if !strings.Contains(out+errOut, "open.ini: still open for writing by another process; it is read once closed") {
		t.Errorf("nsfd reload while open.ini is open for writing:\n%s%s", out, errOut)
	}
	if d := e.status().daemon("open"); d != nil {
		t.Fatalf("a file still being written was applied: %+v", d)
	}
	w.WriteString("user = nobody\n")
	w.Close()
	waitFor(t, "open to run once closed", 15*time.Second, func() bool {
		d := e.status().daemon("open")
		return d != nil && d.State == "running" && len(d.Workers) == 1
	})
	for pid := range e.pids("open") {
		if uid := uidOf(t, pid); uid != 65534 {
			t.Errorf("worker %d runs as uid %d, want nobody", pid, uid)
		}
	}
	if n := strings.Count(e.log(), "nsfd.open: worker started"); n != 1 {
		t.Errorf("%d workers of open started, want 1", n)
	}
}

// Item 5: in the default layout, a `user = nobody`, `type = notify`
// daemon becomes ready; where a directory blocks the way to its notify
// socket, check and status name it instead of a ready_timeout.
func TestHostileNotifySocketReachableByTheWorkersUser(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	e.write("echo.ini", echoConf(oneWorker+"user = nobody\nready_timeout = 5s\n"))

	// The temp dir is 0700: nobody cannot get through it.
	_, errOut, code := e.nsfd("check")
	want := `echo.ini:8: key "user": the workers (uid 65534, gid 65534) cannot reach their notify socket ` +
		filepath.Join(e.dir, "var/run/notify/echo.sock") + ": " + e.dir + " (mode 0700, owner 0:0) does not let them search it"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("nsfd check (exit %d):\n%s\nwant %s", code, errOut, want)
	}

	os.Chmod(e.dir, 0o755)
	if out, errOut, code := e.nsfd("check"); code != 0 {
		t.Errorf("nsfd check with the way open (exit %d): %s%s", code, out, errOut)
	}
	e.start()
	e.waitReady()
	waitFor(t, "echo (user nobody, type notify) to be ready", 15*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d != nil && d.State == "running"
	})
	for pid := range e.pids("echo") {
		if uid := uidOf(t, pid); uid != 65534 {
			t.Errorf("worker %d runs as uid %d", pid, uid)
		}
	}
	// var/ is searchable, not listable; the socket is nobody's alone.
	if fi, _ := os.Stat(filepath.Join(e.dir, "var")); fi.Mode().Perm() != 0o711 {
		t.Errorf("var/ mode %04o, want 0711", fi.Mode().Perm())
	}
	fi, err := os.Lstat(filepath.Join(e.dir, "var/run/notify/echo.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || fi.Mode().Perm() != 0o600 {
		t.Errorf("notify socket owner %d mode %04o, want 65534 0600", st.Uid, fi.Mode().Perm())
	}
}

// Item 6: a run_dir pre-created by another user, or a world-writable etc/,
// is refused by run and by check with the path, its mode and owner.
func TestHostileDirectoriesOtherUsersCouldWriteAreRefused(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	e.write("echo.ini", echoConf(oneWorker))
	run := filepath.Join(e.dir, "var", "run")
	os.MkdirAll(run, 0o755)
	os.Chown(run, 65534, 65534)
	want := `nsfd.ini:2: key "run_dir": refused: ` + run + " is writable by its owner uid 65534 (mode 0755, owner 65534:65534)"
	_, errOut, code := e.nsfdWithin(30*time.Second, "run")
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("nsfd run with nobody's run_dir (exit %d):\n%s\nwant %s", code, errOut, want)
	}
	if _, errOut, code := e.nsfd("check"); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("nsfd check (exit %d):\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(run, "nsfd.sock")); err == nil {
		t.Error("the control socket was made in nobody's run_dir")
	}
	os.Chown(run, 0, 0)

	os.Chmod(e.etc, 0o777)
	want = e.etc + ": refused: " + e.etc + " is writable by every user (mode 0777, owner 0:0)"
	if _, errOut, code := e.nsfdWithin(30*time.Second, "run"); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("nsfd run with a world-writable etc/ (exit %d):\n%s", code, errOut)
	}
	if _, errOut, code := e.nsfd("check"); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("nsfd check (exit %d):\n%s", code, errOut)
	}

	// Made world-writable under a running master: nothing is applied.
	os.Chmod(e.etc, 0o755)
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	os.Chmod(e.etc, 0o777)
	os.WriteFile(filepath.Join(e.etc, "planted.ini"), []byte(echoConf(oneWorker)), 0o644)
	waitFor(t, "the refusal in status", 10*time.Second, func() bool {
		return strings.Contains(e.masterStatus().ConfigError, want)
	})
	if e.status().daemon("planted") != nil {
		t.Error("a daemon planted in a world-writable etc/ was started")
	}
	echo(t, addr, "still serving")
}

// Item 11: `command = a ; b` is refused, not cut at the comment; check
// reports, for the user it names, what run would refuse.
func TestHostileCommandCommentAndCheckForAnotherUser(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	os.Chmod(e.dir, 0o755)
	e.write("cut.ini", "command = "+filepath.Join(binDir, "echo")+" --greeting hi ; rm -rf /tmp/x\nport = 127.0.0.1:0\n")
	_, errOut, code := e.nsfd("check")
	want := `cut.ini:1: key "command": "; rm -rf /tmp/x" would be dropped as a comment`
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "write the whole value in backquotes") ||
		!strings.Contains(errOut, "checked for a master running as root (uid 0)") {
		t.Errorf("nsfd check (exit %d):\n%s", code, errOut)
	}
	e.start()
	e.waitReady()
	if got := e.masterStatus().fileError(e.etc, "cut.ini"); !strings.Contains(got, want) {
		t.Errorf("status: %q", got)
	}
	if e.status().daemon("cut") != nil {
		t.Error("a command cut by a comment was started")
	}
	os.Remove(filepath.Join(e.etc, "cut.ini"))

	// As nobody, on root's etc/: checked for root, who refuses a file anyone can write.
	e.write("open.ini", echoConf(oneWorker))
	os.Chmod(filepath.Join(e.etc, "open.ini"), 0o666)
	_, errOut, code = e.nsfdAsNobody("check")
	if code != 1 || !strings.Contains(errOut, "open.ini: refused: writable by every user (mode 0666, owner 0:0)") ||
		!strings.Contains(errOut, "checked for a master running as root (uid 0)") {
		t.Errorf("nsfd check as nobody (exit %d):\n%s", code, errOut)
	}
	os.Chmod(filepath.Join(e.etc, "open.ini"), 0o644)
	// For a master running as nobody: user = is what it would refuse.
	e.write("open.ini", echoConf(oneWorker+"user = nobody\n"))
	_, errOut, code = e.nsfd("check", "--as", "nobody")
	if code != 1 || !strings.Contains(errOut, `open.ini:8: key "user": the master runs as nobody (uid 65534), not root`) ||
		!strings.Contains(errOut, "checked for a master running as nobody (uid 65534)") {
		t.Errorf("nsfd check --as nobody (exit %d):\n%s", code, errOut)
	}
}

// Next of the same families: a link out of etc/ to a file in a directory
// another user owns, and a directory named like a daemon file.
func TestHostileLinksOutOfEtcAndDirectoriesNamedIni(t *testing.T) {
	needRootForNobody(t)
	e := newEnv(t)
	e.write("echo.ini", echoConf(oneWorker))
	home := filepath.Join(e.dir, "home")
	os.Mkdir(home, 0o755)
	os.WriteFile(filepath.Join(home, "app.ini"), []byte(echoConf(oneWorker)), 0o644) // root's file...
	os.Chown(home, 65534, 65534)                                                     // ...in nobody's directory
	os.Symlink(filepath.Join(home, "app.ini"), filepath.Join(e.etc, "app.ini"))
	os.Mkdir(filepath.Join(e.etc, "dir.ini"), 0o755)
	_, errOut, code := e.nsfd("check")
	want := "app.ini: refused: " + home + " is writable by its owner uid 65534 (mode 0755, owner 65534:65534)"
	if code != 1 || !strings.Contains(errOut, want) || strings.Contains(errOut, "dir.ini") {
		t.Errorf("nsfd check (exit %d):\n%s\nwant %s", code, errOut, want)
	}
	e.start()
	e.waitReady()
	waitFor(t, "echo to run", 15*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d != nil && d.State == "running"
	})
	if e.status().daemon("app") != nil {
		t.Error("a file nobody could replace was started")
	}
	if got := e.masterStatus().fileError(e.etc, "app.ini"); !strings.Contains(got, want) {
		t.Errorf("status: %q", got)
	}
}
