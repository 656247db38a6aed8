//go:build linux && cgo

package prefork

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The direct spawn (spawn_direct_linux.c) must leave a worker exactly as
// the exec shim does: LISTEN_PID and WATCHDOG_PID its own pid, its own
// process group, the listeners from fd 3 and nothing else, the working
// directory, umask, rlimits, credentials, signals at their defaults and
// unblocked; and report a failed step as the shim does.

// directScript prints what the worker got; its pid is replaced by PID.
const directScript = `echo "listen=$LISTEN_PID watchdog=$WATCHDOG_PID cwd=$(pwd) umask=$(umask) nofile=$(ulimit -n)"
echo "id=$(id -u):$(id -g):$(id -G)"
echo "pgid=$(cut -d' ' -f5 /proc/$$/stat) fds=$(ls /proc/$$/fd | tr '\n' ' ')"
echo "fd3=$(readlink /proc/$$/fd/3) stdin=$(readlink /proc/$$/fd/0)"
grep -E '^Sig(Blk|Ign|Cgt)' /proc/$$/status | tr '\t\n' '  '`

// runDirectOrShim starts sh -c directScript with o on a pump, directly or
// through the shim, and returns its stdout (pid as PID), stderr and exit
// code.
func runDirectOrShim(t *testing.T, p *Pump, direct bool, o ExecOptions, argv []string, files []*os.File) (string, string, int) {
	t.Helper()
	out, errOut, code, err := startDirectOrShim(p, direct, o, argv, files)
	if err != nil {
		t.Fatal(err)
	}
	return out, errOut, code
}

// runDirect runs argv with the direct spawn and no listeners; safe to
// call from several goroutines at once.
func runDirect(p *Pump, argv []string) (string, string, int, error) {
	return startDirectOrShim(p, true, ExecOptions{Umask: -1, UID: -1, GID: -1}, argv, nil)
}

// startDirectOrShim is runDirectOrShim with its errors returned: it
// watches the process under an owner of its own, so that calls at once on
// one pump do not drop each other's watches.
func startDirectOrShim(p *Pump, direct bool, o ExecOptions, argv []string, files []*os.File) (string, string, int, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", "", 0, err
	}
	d := &DirectExec{Command: argv, Exec: o, PPID: os.Getpid()}
	c := Command{
		Env:   append(os.Environ(), "WATCHDOG_USEC=1000000", "LISTEN_FDS="+strconv.Itoa(len(files)), "GORACE=atexit_sleep_ms=0"),
		Files: files,
	}
	c.Argv = append(append([]string{exe, ShimArg, "-ppid", strconv.Itoa(os.Getpid())}, o.shimArgs()...), "--")
	c.Argv = append(c.Argv, argv...)
	if direct {
		c.Direct = d
	}
	s := newStreams()
	owner := new(int) // this call's watches, whoever else uses the pump
	c.Output, c.Exited, c.Owner = s.output, s.onExit, owner
	proc, err := p.Start(context.Background(), c)
	if err != nil {
		return "", "", 0, err
	}
	defer p.Drop(owner)
	var st syscall.WaitStatus
	select {
	case exited := <-s.exited:
		st, _ = exited.Wait()
	case <-time.After(30 * time.Second):
		return "", "", 0, fmt.Errorf("%v: no exit reported", argv)
	}
	pid := strconv.Itoa(proc.Pid)
	return strings.ReplaceAll(s.get(proc.Pid, "stdout"), pid, "PID"), s.get(proc.Pid, "stderr"), st.ExitStatus(), nil
}

func TestDirectSpawnMatchesTheShim(t *testing.T) {
	if !directSpawn {
		t.Skip("direct spawn off (NSFD_SPAWN=shim)")
	}
	// A signal the master ignores (SIGHUP under nohup) stays ignored in
	// its workers, as exec leaves it; one it catches is back to the default.
	signal.Ignore(syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	p, err := OpenPump()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	argv := []string{"sh", "-c", directScript}
	for _, o := range []ExecOptions{
		{Umask: -1, UID: -1, GID: -1},
		{Dir: dir, Umask: 0o027, UID: -1, GID: -1, Rlimits: map[string]uint64{"nofile": 1000}},
		{Dir: dir, Umask: 0o077, UID: 65534, GID: 65534, Groups: []int{65534}},
	} {
		direct, derr, dcode := runDirectOrShim(t, p, true, o, argv, []*os.File{lf})
		shim, serr, scode := runDirectOrShim(t, p, false, o, argv, []*os.File{lf})
		if dcode != 0 || scode != 0 || derr != "" || serr != "" {
			t.Fatalf("%+v: direct %d %q, shim %d %q", o, dcode, derr, scode, serr)
		}
		if !strings.Contains(direct, "listen=PID watchdog=PID") || !strings.Contains(direct, "pgid=PID") ||
			!strings.Contains(direct, "fd3=socket:") || !strings.Contains(direct, "stdin=/dev/null") {
			t.Errorf("%+v: direct spawn:\n%s", o, direct)
		}
		if direct != shim {
			t.Errorf("%+v: direct spawn and shim differ:\ndirect: %s\n  shim: %s", o, direct, shim)
		}
	}
}

func TestDirectSpawnReportsAFailedStepAsTheShim(t *testing.T) {
	if !directSpawn {
		t.Skip("direct spawn off (NSFD_SPAWN=shim)")
	}
	p, err := OpenPump()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := t.TempDir()
	plain := dir + "/not-executable"
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keep := ExecOptions{Umask: -1, UID: -1, GID: -1}
	for _, c := range []struct {
		argv []string
		o    ExecOptions
		want string
	}{
		{[]string{"/nonexistent/prog"}, keep, "exec /nonexistent/prog: no such file or directory"},
		{[]string{"nsfd-no-such-command"}, keep, "exec nsfd-no-such-command: no such file or directory"},
		{[]string{plain}, keep, "permission denied"},
		{[]string{dir}, keep, "permission denied"},
		{[]string{"true"}, ExecOptions{Dir: dir + "/missing", Umask: -1, UID: -1, GID: -1}, "chdir: " + dir + "/missing: no such file or directory"},
		{[]string{"true"}, ExecOptions{Umask: -1, UID: -1, GID: -1, Rlimits: map[string]uint64{"nofile": 1 << 40}}, "set rlimit"},
	} {
		out, errOut, code := runDirectOrShim(t, p, true, c.o, c.argv, nil)
		if code != 127 || out != "" || !strings.HasPrefix(errOut, "nsfd exec: ") || !strings.Contains(errOut, c.want) {
			t.Errorf("%v %+v: exit %d, stdout %q, stderr %q; want 127 and %q", c.argv, c.o, code, out, errOut, c.want)
		}
	}
}

// TestDirectSpawnIsBornInItsCgroup: given its cgroup2 group, a directly
// spawned worker is cloned into it (CLONE_INTO_CGROUP), not moved there.
func TestDirectSpawnIsBornInItsCgroup(t *testing.T) {
	if !directSpawn {
		t.Skip("direct spawn off (NSFD_SPAWN=shim)")
	}
	mnt := cgroup2Mount()
	if mnt == "" || os.Getuid() != 0 {
		t.Skip("needs root and a cgroup2 hierarchy")
	}
	name := "nsfd-clone-test-" + strconv.Itoa(os.Getpid())
	dir := filepath.Join(mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup2 group: %v", err)
	}
	defer func() {
		deadline := time.Now().Add(5 * time.Second)
		for os.Remove(dir) != nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the exited child leaves the group as it is reaped
		}
	}()
	p, err := OpenPump()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := newStreams()
	before := clonedIntoCgroup.Load()
	proc, err := p.Start(context.Background(), Command{
		Argv: []string{"/bin/false"}, Env: os.Environ(),
		Direct: &DirectExec{Command: []string{"cat", "/proc/self/cgroup"}, Exec: ExecOptions{Umask: -1, UID: -1, GID: -1},
			PPID: os.Getpid(), Cgroups: []string{filepath.Join(dir, "cgroup.procs")}, IntoCgroup: dir},
		Output: s.output, Exited: s.onExit, Owner: t,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Drop(t)
	select {
	case exited := <-s.exited:
		_, _ = exited.Wait()
	case <-time.After(30 * time.Second):
		t.Fatal("no exit reported")
	}
	if out := s.get(proc.Pid, "stdout"); !strings.Contains(out, "0::/"+name+"\n") {
		t.Errorf("the worker's groups:\n%s\nwant 0::/%s (stderr %q)", out, name, s.get(proc.Pid, "stderr"))
	}
	if n := clonedIntoCgroup.Load() - before; n != 1 {
		t.Errorf("%d children cloned into their group, want 1 (moved there instead)", n)
	}
}

// cgroup2Mount is where the cgroup2 hierarchy is mounted; "" if nowhere.
func cgroup2Mount() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && strings.HasPrefix(post, "cgroup2 ") && len(f) > 4 && f[3] == "/" {
			return f[4]
		}
	}
	return ""
}

// TestDirectSpawnsAtOnce starts workers from more pumps at once than
// nsfd_spawn keeps child stacks for (one pump's spawns take turns), round
// after round: every child must exec its own command line with its own
// LISTEN_PID, whichever stack it ran on before its exec and whoever ran
// on that stack before it.
func TestDirectSpawnsAtOnce(t *testing.T) {
	if !directSpawn {
		t.Skip("direct spawn off (NSFD_SPAWN=shim)")
	}
	const pumps, rounds = 8, 20
	errs := make(chan error, pumps*rounds)
	for g := range pumps {
		p, err := OpenPump()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		go func() {
			for r := range rounds {
				want := fmt.Sprintf("p%d-r%d", g, r)
				out, serr, code, err := runDirect(p, []string{"sh", "-c", `echo "$0 $LISTEN_PID"`, want})
				if err != nil || code != 0 || serr != "" || out != want+" PID\n" {
					errs <- fmt.Errorf("%s: %v, exit %d, stdout %q, stderr %q", want, err, code, out, serr)
					continue
				}
				errs <- nil
			}
		}()
	}
	for range pumps * rounds {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
