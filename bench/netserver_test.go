package bench

// The peers of BenchmarkPerlEcho and BenchmarkPerlPreload: perl,
// Net::Server::PreFork and the scripts of bench/perl.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// perlAndNetServer returns the perl binary and the versions of perl and
// Net::Server, or skips the benchmark when either is missing.
func perlAndNetServer(tb testing.TB) (perl, perlVersion, nsVersion string) {
	tb.Helper()
	perl, err := exec.LookPath("perl")
	if err != nil {
		tb.Skip("perl not found in PATH: the Net::Server::PreFork comparison needs perl 5 and Net::Server (Debian: libnet-server-perl)")
	}
	out, err := exec.Command(perl, "-e", `printf "%vd", $^V`).Output()
	if err != nil {
		tb.Skipf("perl -e: %v: the Net::Server::PreFork comparison needs a working perl", err)
	}
	perlVersion = string(out)
	out, err = exec.Command(perl, "-MNet::Server::PreFork", "-e", `print $Net::Server::VERSION`).CombinedOutput()
	if err != nil {
		tb.Skipf("Net::Server::PreFork not installed (Debian: libnet-server-perl, CPAN: Net::Server): %s", strings.TrimSpace(string(out)))
	}
	return perl, perlVersion, string(out)
}

// debianVersion returns "Debian PACKAGE VERSION", or "not from a Debian package".
func debianVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil || len(out) == 0 {
		return "not from a Debian package"
	}
	return "Debian " + pkg + " " + string(out)
}

// perlScript returns the absolute path of a script of bench/perl.
func perlScript(tb testing.TB, name string) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join("perl", name))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// netServer is a running netserver-echo.pl: a Net::Server::PreFork parent
// and its children, in a process group of their own.
type netServer struct {
	tb     testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	addr   string
	logf   string
}

var netServerAddrRE = regexp.MustCompile(`listening on (\S+:\d+)`)

// startNetServer starts script (a Net::Server program) with args in the
// foreground, logging to a file, and waits until it is bound. It is stopped,
// with its whole process group, when tb ends.
func startNetServer(tb testing.TB, perl, script string, args ...string) *netServer {
	tb.Helper()
	dir := tb.TempDir()
	ns := &netServer{tb: tb, logf: filepath.Join(dir, "netserver.log"), exited: make(chan struct{})}
	out, err := os.Create(filepath.Join(dir, "netserver.out"))
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	ns.cmd = exec.Command(perl, append([]string{script, "--log_file=" + ns.logf}, args...)...)
	ns.cmd.Stdout, ns.cmd.Stderr = out, out
	ns.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := ns.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { ns.cmd.Wait(); close(ns.exited) }()
	tb.Cleanup(func() {
		if err := ns.stop(); err != nil {
			tb.Error(err)
		}
	})
	ok := waitFor(30*time.Second, 20*time.Millisecond, func() bool {
		b, _ := os.ReadFile(ns.logf)
		if mm := netServerAddrRE.FindSubmatch(b); mm != nil {
			ns.addr = string(mm[1])
			return true
		}
		select {
		case <-ns.exited:
			return true
		default:
			return false
		}
	})
	if !ok || ns.addr == "" {
		log, _ := os.ReadFile(ns.logf)
		o, _ := os.ReadFile(out.Name())
		tb.Fatalf("Net::Server did not start\nlog:\n%s\noutput:\n%s", log, o)
	}
	return ns
}

// children returns the pids of the Net::Server parent's children.
func (ns *netServer) children() []int {
	var pids []int
	for _, p := range children(ns.cmd.Process.Pid) {
		pids = append(pids, p.pid)
	}
	return pids
}

// stop sends SIGTERM to the process group (the parent stops its children
// too), waits for the parent, then kills whatever of the group is left and
// waits until none of it is.
func (ns *netServer) stop() error {
	pgid := ns.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-ns.exited:
	case <-time.After(15 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-ns.exited
	if !waitFor(10*time.Second, 10*time.Millisecond, func() bool { return len(processGroup(pgid)) == 0 }) {
		return fmt.Errorf("Net::Server: processes %v of group %d still there 10s after SIGKILL", processGroup(pgid), pgid)
	}
	return nil
}

// processGroup returns the live (not zombie) processes of process group pgid.
func processGroup(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// envWithout returns the environment without the variables named.
func envWithout(keys ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains(keys, k) {
			env = append(env, kv)
		}
	}
	return env
}
