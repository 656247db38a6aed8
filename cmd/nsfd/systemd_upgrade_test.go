//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Under a real systemd: systemd boots as PID 1 of its own PID, mount, net
// and UTS namespace, as the issue says, with a tmpfs on /tmp and /run
// mounted inside first (booting runs systemd-tmpfiles, which would empty
// /tmp). Two things are added for this host, whose PID 1 is not systemd
// and whose cgroup hierarchy other tests use: a cgroup namespace rooted in
// a cgroup of the test's own, and a cgroup2 file system mounted inside on
// /sys/fs/cgroup, so that systemd manages that subtree and nothing else.
// Every file of the test is outside /tmp; the units are written to /run
// inside (a tmpfs of the namespace), never to /etc/systemd/system; the
// namespace is powered off at the end.

// sdBoot is the script run as the namespace's first process.
const sdBoot = `set -e
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
mkdir -p /run/systemd/system
cp %[1]s/units/* /run/systemd/system/
exec env container=nsfd-test /lib/systemd/systemd --system --unit=nsfd-test.target
`

type sdNS struct {
	t    *testing.T
	dir  string
	cmd  *exec.Cmd
	pid1 int // systemd's pid, as the host sees it
	done chan struct{}
}

// in runs argv inside the namespace (its mounts, pids and network).
func (s *sdNS) in(argv ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(s.pid1), "-m", "-p", "-n", "--"}, argv...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (s *sdNS) systemctl(args ...string) string {
	s.t.Helper()
	out, err := s.in(append([]string{"systemctl", "--no-pager"}, args...)...)
	if err != nil && args[0] != "is-active" && args[0] != "is-system-running" {
		s.t.Fatalf("systemctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func cgroup2Root() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "/sys/fs/cgroup"
	}
	return "/sys/fs/cgroup/unified"
}

func bootSystemd(t *testing.T, dir string, units map[string]string) *sdNS {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "units"), 0o755)
	units["nsfd-test.target"] = "[Unit]\nDescription=nsfd test\n"
	for name, u := range units {
		if err := os.WriteFile(filepath.Join(dir, "units", name), []byte(u), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	boot := filepath.Join(dir, "boot.sh")
	if err := os.WriteFile(boot, []byte(fmt.Sprintf(sdBoot, dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	cg := filepath.Join(cgroup2Root(), filepath.Base(dir))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &sdNS{t: t, dir: dir, done: make(chan struct{})}
	out, _ := os.Create(filepath.Join(dir, "boot.out"))
	s.cmd = exec.Command("bash", "-c", "echo $$ > "+cg+"/cgroup.procs && exec unshare --pid --fork --mount --net --uts --mount-proc --cgroup bash "+boot)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); out.Close(); close(s.done) }()
	t.Cleanup(func() {
		if s.pid1 > 0 {
			s.in("systemctl", "poweroff")
		}
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Error("the namespace did not power off; killing it")
			s.cmd.Process.Kill()
			if s.pid1 > 0 {
				syscall.Kill(s.pid1, syscall.SIGKILL)
			}
			<-s.done
		}
		// The cgroups systemd made, deepest first.
		var dirs []string
		filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "boot.out"))
			t.Logf("boot output:\n%s", b)
		}
	})
	waitFor(t, "systemd as PID 1 of the namespace", 20*time.Second, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", s.cmd.Process.Pid, s.cmd.Process.Pid))
		if err != nil {
			return false
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return false
		}
		p, _ := strconv.Atoi(f[0])
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if strings.TrimSpace(string(comm)) == "systemd" {
			s.pid1 = p
			return true
		}
		return false
	})
	waitFor(t, "systemd running", 30*time.Second, func() bool {
		st := s.systemctl("is-system-running")
		return st == "running" || st == "degraded"
	})
	return s
}

// sdLoad runs connect-per-request echo requests inside the namespace until
// stop exists, then prints "ok N fail M".
const sdLoad = `import os, socket, sys
ok = fail = 0
first = ""
while not os.path.exists(sys.argv[2]):
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        c.settimeout(5)
        m = b"req-%d" % (ok + fail)
        c.sendall(m)
        r = c.recv(100)
        c.close()
        if r == m:
            ok += 1
        else:
            fail += 1
            first = first or "answer %r" % r
    except Exception as e:
        fail += 1
        first = first or repr(e)
    if ok == 1:
        open(sys.argv[3], "w").close()
print("ok %d fail %d %s" % (ok, fail, first))
`

func TestUpgradeUnderSystemd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: boots systemd in namespaces")
	}
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Skip("no /lib/systemd/systemd")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("no " + tool)
		}
	}
	newBin := buildNsfd(t, "-X main.Version=sd-new")
	oldBin := buildNsfd(t, "-X main.Version=sd-old")
	// Outside /tmp: the namespace has a tmpfs there.
	dir, err := os.MkdirTemp("/var/tmp", "nsfd-sd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "nsfd")
	install(t, oldBin, bin)
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(etc, 0o755)
	e := &env{t: t, dir: dir, etc: etc}
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	os.WriteFile(filepath.Join(etc, "served.py"), []byte(servedWorker), 0o644)
	const port = "7070"
	e.write("up.ini", "command = /usr/bin/python3 "+filepath.Join(etc, "served.py")+"\nport = 127.0.0.1:"+port+"\nmin_servers = 2\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n")
	loadPy := filepath.Join(dir, "load.py")
	os.WriteFile(loadPy, []byte(sdLoad), 0o644)

	s := bootSystemd(t, dir, map[string]string{
		"nsfd.service": "[Unit]\nDescription=nsfd\nDefaultDependencies=no\n[Service]\nType=notify\nNotifyAccess=main\n" +
			"ExecStart=" + bin + " run --etc " + etc + "\nExecReload=/bin/kill -HUP $MAINPID\nKillMode=mixed\nTimeoutStopSec=30\n",
		"nsfd.socket": "[Unit]\nDescription=nsfd sockets\nDefaultDependencies=no\n[Socket]\nListenStream=127.0.0.1:" + port + "\nBacklog=1024\nService=nsfd.service\n",
	})

	// Type=notify, upgrade in place: the unit stays active, MainPID the same.
	s.systemctl("start", "nsfd.service")
	mainPID := s.systemctl("show", "-p", "MainPID", "--value", "nsfd.service")
	before := e.upStatus()
	if strconv.Itoa(before.PID) != mainPID || before.Version != "sd-old" {
		t.Fatalf("MainPID %s, status pid %d version %s", mainPID, before.PID, before.Version)
	}
	install(t, newBin, bin)
	if out, errOut, code := e.nsfd("upgrade"); code != 0 {
		t.Fatalf("upgrade under systemd: exit %d\n%s%s", code, out, errOut)
	}
	after := e.upStatus()
	if got := s.systemctl("show", "-p", "MainPID", "--value", "nsfd.service"); got != mainPID {
		t.Errorf("MainPID %s after the upgrade, %s before", got, mainPID)
	}
	if st := s.systemctl("is-active", "nsfd.service"); st != "active" {
		t.Errorf("nsfd.service is %s after the upgrade", st)
	}
	if after.Version != "sd-new" || after.PID != before.PID || !equalInts(workerPIDs(after, "up"), workerPIDs(before, "up")) {
		t.Errorf("after the upgrade: version %s pid %d workers %v (before %v)", after.Version, after.PID, workerPIDs(after, "up"), workerPIDs(before, "up"))
	}
	s.systemctl("stop", "nsfd.service")

	// The socket unit: systemd holds the listener, nsfd restarts, no request fails.
	s.systemctl("start", "nsfd.socket")
	s.systemctl("start", "nsfd.service")
	stop, started := filepath.Join(dir, "load.stop"), filepath.Join(dir, "load.started")
	load := exec.Command("nsenter", "-t", strconv.Itoa(s.pid1), "-m", "-p", "-n", "--", "/usr/bin/python3", loadPy, port, stop, started)
	var loadOut bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "load running", 20*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	s.systemctl("restart", "nsfd.service")
	waitFor(t, "nsfd serving again", 30*time.Second, func() bool { return s.systemctl("is-active", "nsfd.service") == "active" })
	os.WriteFile(stop, nil, 0o644)
	load.Wait()
	var ok, fail int
	fmt.Sscanf(loadOut.String(), "ok %d fail %d", &ok, &fail)
	t.Logf("across systemctl restart with the socket unit: %s", strings.TrimSpace(loadOut.String()))
	if ok == 0 || fail != 0 {
		t.Errorf("across systemctl restart with the socket unit: %s", loadOut.String())
	}
	if !strings.Contains(e.log(), "socket from systemd") {
		t.Error("nsfd did not take the socket from systemd")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
