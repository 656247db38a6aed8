//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/supervisor"
)

// The upgrade tests build nsfd again with other link-time variables (only
// the link step runs again: the packages are in the build cache).

var upgradeBuilds sync.Map // ldflags -> *upgradeBuild

type upgradeBuild struct {
	once sync.Once
	path string
	err  error
}

// buildNsfd returns an nsfd binary linked with ldflags, built once per test
// binary into binDir.
func buildNsfd(t *testing.T, ldflags string) string {
	t.Helper()
	v, _ := upgradeBuilds.LoadOrStore(ldflags, &upgradeBuild{})
	b := v.(*upgradeBuild)
	b.once.Do(func() {
		f, err := os.CreateTemp(binDir, "nsfd-up-")
		if err != nil {
			b.err = err
			return
		}
		f.Close()
		b.path = f.Name()
		args := []string{"build", "-o", b.path, "-ldflags", ldflags}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/nsfd")...)
		cmd.Dir = repoDir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build nsfd %s: %v\n%s", ldflags, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// install copies src to dst the way a package manager replaces a binary:
// a new file renamed over the old one.
func install(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// startBin starts `bin run` on e, as env.start does with the test's nsfd.
func (e *env) startBin(bin string) *master { return e.startWith(bin, nil) }

// startWith starts `bin run` on e with files as fds 3.. and LISTEN_FDS
// saying so, as systemd does for a socket unit.
func (e *env) startWith(bin string, files []*os.File) *master {
	e.t.Helper()
	cmd := exec.Command(bin, "run", "--etc", e.etc)
	if len(files) > 0 {
		cmd.ExtraFiles = files
		cmd.Env = append(os.Environ(), fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES=web")
	}
	return e.startCmd(cmd)
}

// upStatus is `nsfd status --json`.
func (e *env) upStatus() supervisor.Status {
	e.t.Helper()
	out, errOut, code := e.nsfd("status", "--json")
	var st supervisor.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		e.t.Fatalf("status: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	return st
}

// workerPIDs returns the pids of daemon's workers, sorted.
func workerPIDs(st supervisor.Status, daemon string) []int {
	var pids []int
	for _, d := range st.Daemons {
		if d.Name == daemon {
			for _, w := range d.Workers {
				pids = append(pids, w.PID)
			}
		}
	}
	slices.Sort(pids)
	return pids
}

// servedWorker is a worker that echoes one message per connection on its
// inherited socket and prints one numbered line for each; SIGTERM ends it
// between connections (the socket is non-blocking, for all of them).
const servedWorker = `import os, select, signal, socket
s = socket.socket(fileno=3)
s.setblocking(False)
stop = False
def term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, term)
n = 0
while not stop:
    select.select([s], [], [], 0.1)
    try:
        c, _ = s.accept()
    except BlockingIOError:
        continue
    c.setblocking(True)
    m = c.recv(1024)
    c.sendall(m)
    c.close()
    n += 1
    print("served %d %d %s" % (os.getpid(), n, m.decode().strip()), flush=True)
`

// upgradeEnv is an env with two python workers on port, ready.
func upgradeEnv(t *testing.T, bin string) (*env, *master, string) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.etc, "served.py"), []byte(servedWorker), 0o644); err != nil {
		t.Fatal(err)
	}
	e.write("up.ini", "command = python3 "+filepath.Join(e.etc, "served.py")+"\nport = 127.0.0.1:0\nmin_servers = 2\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n")
	m := e.startBin(bin)
	addr := m.addr("up")
	waitFor(t, "2 workers serving", 20*time.Second, func() bool { return tryEcho(addr, "warm") == nil && len(m.workers("python3")) == 2 })
	return e, m, addr
}

// upLoad sends one message per connection to addr until stop is closed,
// at most limit, and counts answers and failures.
type upLoad struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	done       chan struct{}
}

func startUpLoad(addr string, limit int) *upLoad {
	return startUpLoadWithin(addr, limit, 5*time.Second)
}

// startUpLoadWithin is startUpLoad with a request's time limit: across a
// restart a request waits in the kernel's backlog for the new workers.
func startUpLoadWithin(addr string, limit int, within time.Duration) *upLoad {
	l := &upLoad{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; i < limit; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			if err := echoWithin(addr, fmt.Sprintf("req-%d", i), within); err != nil {
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			l.ok.Add(1)
		}
	}()
	return l
}

func (l *upLoad) finish() { close(l.stop); <-l.done }

// echoWithin sends msg on a new connection to addr and reads it back, all
// within d.
func echoWithin(addr, msg string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("echo %q via %s: %w", msg, addr, err)
	}
	if string(got) != msg+"\n" {
		return fmt.Errorf("echo %q via %s: got %q", msg, addr, got)
	}
	return nil
}

// servedLines counts the lines workers printed for the requests of an upLoad.
func servedLines(e *env) int { return strings.Count(e.log(), " req-") }

func TestUpgradeInPlaceUnderLoad(t *testing.T) {
	needPump(t, "refuses nsfd upgrade (its workers' pipes and exits are not handed over)")
	t.Parallel()
	oldBin := buildNsfd(t, "-X main.Version=up-old")
	newBin := buildNsfd(t, "-X main.Version=up-new")
	dir := t.TempDir()
	bin := filepath.Join(dir, "nsfd")
	install(t, oldBin, bin)
	e, m, addr := upgradeEnv(t, bin)
	before := e.upStatus()
	if before.Version != "up-old" {
		t.Fatalf("version %q before the upgrade", before.Version)
	}
	pids := workerPIDs(before, "up")

	l := startUpLoad(addr, 100000)
	waitFor(t, "load running", 10*time.Second, func() bool { return l.ok.Load() > 50 })
	install(t, newBin, bin) // replace the file, as a package upgrade does
	out, errOut, code := e.nsfd("upgrade")
	if code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "up-old -> up-new") {
		t.Errorf("upgrade said %q", out)
	}
	mark := l.ok.Load()
	waitFor(t, "load after the upgrade", 10*time.Second, func() bool { return l.ok.Load() > mark+50 })
	l.finish()

	after := e.upStatus()
	if after.PID != m.cmd.Process.Pid || after.PID != before.PID {
		t.Errorf("master pid %d before, %d after (started as %d)", before.PID, after.PID, m.cmd.Process.Pid)
	}
	if got := workerPIDs(after, "up"); !slices.Equal(got, pids) {
		t.Errorf("workers %v before, %v after", pids, got)
	}
	if after.Version != "up-new" || after.Upgrades != 1 || after.Upgraded == nil || after.UpgradedFrom != "up-old" {
		t.Errorf("status after: version %q, upgrades %d, upgraded %v from %q", after.Version, after.Upgrades, after.Upgraded, after.UpgradedFrom)
	}
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the upgrade; first: %v", n, n+l.ok.Load(), l.firstErr.Load())
	}
	// Every request made its worker print a line: none is lost across the exec.
	want := int(l.ok.Load())
	waitFor(t, fmt.Sprintf("%d served lines in the log", want), 10*time.Second, func() bool { return servedLines(e) >= want })
	if got := servedLines(e); got != want {
		t.Errorf("%d served lines in the log, want %d", got, want)
	}
	lg := e.log()
	for _, s := range []string{"upgrading: re-executing in place", "nsfd upgraded in place: from=up-old to=up-new"} {
		if !strings.Contains(lg, s) {
			t.Errorf("log lacks %q", s)
		}
	}
	// A second upgrade works as well (SIGUSR2 this time).
	install(t, oldBin, bin)
	m.cmd.Process.Signal(syscall.SIGUSR2)
	waitFor(t, "second upgrade", 20*time.Second, func() bool { st := e.upStatus(); return st.Upgrades == 2 && st.Version == "up-old" })
	echo(t, addr, "after two upgrades")
	if code := m.stop(); code != 0 {
		t.Errorf("master exit %d after the upgrades", code)
	}
	if left := len(m.workers("python3")); left != 0 {
		t.Errorf("%d workers left after stop", left)
	}
}

func TestUpgradeRefusesBrokenBinaries(t *testing.T) {
	t.Parallel()
	bin := buildNsfd(t, "-X main.Version=up-old")
	older := buildNsfd(t, "-X main.Version=up-older-format -X main.HandoverMax=1")
	e, m, addr := upgradeEnv(t, bin)
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	src, _ := os.ReadFile(bin)
	cases := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"not executable", write("noexec", string(src), 0o644), "not executable"},
		{"writable by others", write("groupw", string(src), 0o775), "writable by group or others"},
		{"garbage", write("garbage", string(garbage), 0o755), "cannot run it"},
		{"exits 1", write("exit1", "#!/bin/sh\necho broken >&2\nexit 1\n", 0o755), "broken"},
		{"not nsfd", write("liar", "#!/bin/sh\necho hello\n", 0o755), "not an nsfd binary"},
		{"older hand-over format", older, "reads hand-over versions 1 to 1"},
	}
	before := e.upStatus()
	for _, c := range cases {
		out, errOut, code := e.nsfd("upgrade", "--binary", c.path)
		if code == 0 || !strings.Contains(errOut, "upgrade refused") || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want a refusal saying %q:\n%s%s", c.name, code, c.want, out, errOut)
		}
		echo(t, addr, "still serving after "+c.name)
	}
	after := e.upStatus()
	if after.PID != before.PID || !slices.Equal(workerPIDs(after, "up"), workerPIDs(before, "up")) || after.Version != "up-old" || after.Upgrades != 0 {
		t.Errorf("the master changed: before pid %d workers %v, after pid %d workers %v version %q upgrades %d",
			before.PID, workerPIDs(before, "up"), after.PID, workerPIDs(after, "up"), after.Version, after.Upgrades)
	}
	if !strings.Contains(after.UpgradeError, "upgrade refused") {
		t.Errorf("status upgrade_error = %q", after.UpgradeError)
	}
	_ = m
}

// An exec that fails after a good preflight (the binary is gone by then)
// leaves the master as it was: its workers, their output, its sockets.
func TestUpgradeExecFailureKeepsMaster(t *testing.T) {
	needPump(t, "refuses nsfd upgrade (its workers' pipes and exits are not handed over)")
	t.Parallel()
	bin := buildNsfd(t, "-X main.Version=up-old")
	e, m, addr := upgradeEnv(t, bin)
	// Passes the preflight (the real binary answers it), then removes itself.
	vanish := filepath.Join(t.TempDir(), "vanishing")
	if err := os.WriteFile(vanish, []byte("#!/bin/sh\nrm -f \"$0\"\nexec "+bin+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := e.upStatus()
	lines := servedLines(e)
	out, errOut, code := e.nsfd("upgrade", "--binary", vanish)
	if code == 0 || !strings.Contains(errOut, "exec "+vanish) {
		t.Fatalf("upgrade with a vanishing binary: exit %d\n%s%s", code, out, errOut)
	}
	l := startUpLoad(addr, 200)
	<-l.done
	after := e.upStatus()
	if after.PID != before.PID || !slices.Equal(workerPIDs(after, "up"), workerPIDs(before, "up")) || after.UpgradeFailures != 1 {
		t.Errorf("before pid %d workers %v, after pid %d workers %v failures %d",
			before.PID, workerPIDs(before, "up"), after.PID, workerPIDs(after, "up"), after.UpgradeFailures)
	}
	if l.failed.Load() != 0 {
		t.Errorf("%d requests failed after the failed exec: %v", l.failed.Load(), l.firstErr.Load())
	}
	// The pump reads the workers' pipes again.
	want := lines + int(l.ok.Load())
	waitFor(t, "worker output after the failed exec", 10*time.Second, func() bool { return servedLines(e) >= want })
	// And a good upgrade still works.
	out, errOut, code = e.nsfd("upgrade", "--binary", buildNsfd(t, "-X main.Version=up-new"))
	if code != 0 {
		t.Fatalf("upgrade after a failed one: exit %d\n%s%s", code, out, errOut)
	}
	echo(t, addr, "upgraded after all")
	_ = m
}
