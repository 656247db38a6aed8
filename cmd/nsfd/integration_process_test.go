//go:build linux

package main

// End-to-end tests of the workers' process settings (user, cwd, umask,
// limits, environment, chroot) and of a master that does not run as root.

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

// procIDs returns a process's Uid, Gid and Groups lines from /proc/PID/status.
func procIDs(pid int) (uid, gid, groups string) {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.Join(strings.Fields(v), " ")
		switch k {
		case "Uid":
			uid = v
		case "Gid":
			gid = v
		case "Groups":
			groups = v
		}
	}
	return
}

func TestWorkersDropToDaemonUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	e := newEnv(t)
	os.Chmod(e.dir, 0o755) // nobody must reach its notify socket under var/run
	sock := filepath.Join(e.dir, "var", "run", "echo.sock")
	e.write("echo.ini", "command = "+filepath.Join(binDir, "echo")+"\nport = "+sock+"|unix\ntype = notify\nuser = nobody\nsocket_mode = 0640\numask = 027\n"+
		"min_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 3\n")
	m := e.start()
	m.addr("echo")
	waitFor(t, "2 workers ready", 15*time.Second, func() bool {
		return strings.Count(e.log(), "stdout: echo worker") == 2 && len(m.workers("echo")) == 2
	})
	for _, pid := range m.workers("echo") {
		uid, gid, groups := procIDs(pid)
		if uid != "65534 65534 65534 65534" || gid != "65534 65534 65534 65534" || groups != "" {
			t.Errorf("worker %d: Uid %q Gid %q Groups %q; want nobody's everywhere and no groups", pid, uid, gid, groups)
		}
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || fi.Mode().Perm() != 0o640 {
		t.Errorf("socket owner %d mode %v; want nobody and 0640", st.Uid, fi.Mode().Perm())
	}
	echo(t, sock, "as nobody")
}

func TestProcessSettings(t *testing.T) {
	e := newEnv(t)
	work := filepath.Join(e.dir, "work")
	os.Mkdir(work, 0o755)
	e.write("env.ini", "command = /bin/sh -c 'echo cwd=`pwd` umask=`umask` nofile=`ulimit -n` core=`ulimit -c` greeting=\"$GREETING\"; exec sleep 1000'\n"+
		"port = 127.0.0.1:0\ncwd = "+work+"\numask = 027\nlimit_nofile = 256\nlimit_core = 0\nenv_file = env.txt\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n[env]\nGREETING = hello there\n")
	e.write("env.txt", "# from env_file\nGREETING=overridden by [env]\nOTHER=1\n")
	e.start()
	want := "cwd=" + work + " umask=0027 nofile=256 core=0 greeting=hello there"
	waitFor(t, "the worker's settings in the log", 10*time.Second, func() bool { return strings.Contains(e.log(), want) })
}

func TestChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	e := newEnv(t)
	root := filepath.Join(e.dir, "jail")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "echo"), "./examples/echo")
	build.Dir, build.Env = repoDir, append(os.Environ(), "CGO_ENABLED=0") // static: the jail has no libc
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	e.write("jailed.ini", "command = /bin/echo\nchroot = "+root+"\nuser = nobody\nport = 127.0.0.1:0\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	addr := m.addr("jailed")
	waitFor(t, "the jailed worker", 10*time.Second, func() bool { return len(m.workers("echo")) == 1 })
	pid := m.workers("echo")[0]
	if r, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/root"); err != nil || r != root {
		t.Errorf("worker root = %q, %v; want %s", r, err, root)
	}
	echo(t, addr, "from the jail")
}

func TestNonRootMaster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to become nobody")
	}
	e := newEnv(t)
	conf := echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	e.write("mine.ini", conf)
	e.write("other.ini", conf+"user = root\n")
	filepath.Walk(e.dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 65534, 65534) })
	os.Chmod(e.dir, 0o755)
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), "run", "--etc", e.etc)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("master output:\n%s\nlog:\n%s", out.String(), e.log())
		}
	}()
	waitFor(t, "mine to run and other to be refused", 15*time.Second, func() bool {
		l := e.log()
		return strings.Contains(l, "nsfd.mine: daemon state: state=running") &&
			strings.Contains(l, `other.ini:8: key \"user\": the master runs as nobody (uid 65534), not root, and cannot switch its workers`)
	})
}
