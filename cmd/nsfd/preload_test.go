//go:build linux

package main

// End-to-end tests of preload = true (docs/protocol.md, "Preload
// fork-server"): real Python and Perl fork-servers under a real master.

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// preloadConf is a preloaded echo daemon running prog (examples/python
// or examples/perl).
func preloadConf(interp, prog, extra string) string {
	return "command = " + interp + " " + filepath.Join(repoDir, prog) + "\nport = 127.0.0.1:0\ntype = notify\npreload = true\n" +
		"start_seconds = 10ms\nbackoff_initial = 20ms\n" + extra
}

var forkServerRE = regexp.MustCompile(`preload fork-server started: pid=(\d+)`)

// forkServers returns the pids of the fork-servers the master started, in order.
func forkServers(e *env) []int {
	var out []int
	for _, m := range forkServerRE.FindAllStringSubmatch(e.log(), -1) {
		pid, _ := strconv.Atoi(m[1])
		out = append(out, pid)
	}
	return out
}

// preloadWorkers returns the master's children running prog but the
// fork-servers.
func preloadWorkers(e *env, m *master, prog string) []int {
	fss := forkServers(e)
	var out []int
	for _, pid := range m.workers(prog) {
		if !slicesContains(fss, pid) {
			out = append(out, pid)
		}
	}
	return out
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// environ returns one variable of a process's initial environment.
func environ(pid int, key string) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestPreloadPython(t *testing.T) {
	t.Parallel()
	needPump(t, "cannot preload (no subreaper, no pidfds)")
	py := python3(t)
	e := newEnv(t)
	e.write("pre.ini", preloadConf(py, "examples/python/preload_echo.py", "min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n"))
	m := e.start()
	addr := m.addr("pre")
	waitFor(t, "2 preloaded workers ready", 20*time.Second, func() bool {
		return strings.Count(e.log(), "stdout: python echo worker") >= 2
	})
	t.Log(e.log())
	fss := forkServers(e)
	if len(fss) != 1 {
		t.Fatalf("fork-servers started: %v, want one", fss)
	}
	ws := preloadWorkers(e, m, "python")
	if len(ws) != 2 {
		t.Fatalf("workers %v, want 2", ws)
	}
	for _, pid := range ws {
		if pg, _ := syscall.Getpgid(pid); pg != pid {
			t.Errorf("worker %d is in process group %d, not its own", pid, pg)
		}
		if !strings.Contains(e.log(), "pre["+strconv.Itoa(pid)+"] stdout: python echo worker "+strconv.Itoa(pid)+" ready") {
			t.Errorf("worker %d's output is not in the central log under its pid", pid)
		}
	}
	for i := range 10 {
		echo(t, addr, "preloaded "+strconv.Itoa(i))
	}
	_ = time.Second
}
