//go:build linux

package main

// End-to-end tests of containment: whatever a worker starts is stopped with
// it — a helper that keeps the listener, and one that escaped its process
// group with setsid and a double fork — whoever stops it.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
)

var containSeq atomic.Int64

// forkingWorker writes a worker script to dir: it starts a helper that
// holds the listener (fd 3) in its process group, and one that leaves it
// with setsid and a double fork (an orphan of the master, still holding
// fd 3), then becomes the echo worker. Every helper has the token and its
// worker's pid in its argv (sleep sums its arguments). It returns the
// script's path and the token.
func forkingWorker(t *testing.T, dir string) (string, string) {
	t.Helper()
	tok := strconv.Itoa(os.Getpid()) + strconv.FormatInt(containSeq.Add(1), 10)
	script := filepath.Join(dir, "forker-"+tok+".sh")
	body := "#!/bin/sh\n" +
		"sleep 100000 0." + tok + " 0.$$ &\n" +
		"setsid sh -c 'sleep 100001 0." + tok + " 0.'$$' &' &\n" +
		"exec " + filepath.Join(binDir, "echo") + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, tok
}

// tokenProcs returns the live processes whose argv holds "0.tok" and, with
// workerPID > 0, "0.workerPID".
func tokenProcs(tok string, workerPID int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte("\x000."+tok+"\x00")) {
			continue
		}
		if workerPID > 0 && !bytes.Contains(b, []byte("\x000."+strconv.Itoa(workerPID)+"\x00")) {
			continue
		}
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// refused says whether a TCP connect to addr is refused: no process holds
// the listener any more. addr must be held for the test (testport.Reserve):
// a port the stop freed could be given to another test process, whose
// listener would answer.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return strings.Contains(err.Error(), "refused")
}

// startForkers starts a master with one daemon of forking workers on port
// and waits for its workers' helpers; it returns the master, the daemon's
// address and the token of its helpers.
func startForkers(t *testing.T, e *env, port, extra string) (*master, string, string) {
	t.Helper()
	script, tok := forkingWorker(t, e.dir)
	e.write("forker.ini", "command = "+script+"\nport = "+port+"\ntype = notify\nmin_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 3\ngraceful_timeout = 5s\n"+extra)
	m := e.start()
	addr := m.addr("forker")
	waitFor(t, "2 helpers a worker", 15*time.Second, func() bool { return len(tokenProcs(tok, 0)) >= 4 })
	return m, addr, tok
}

func containModes(t *testing.T, f func(t *testing.T, e *env)) {
	for _, mode := range []string{"cgroups", "nocgroups"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "nocgroups" {
				t.Setenv("NSFD_CGROUPS", "off")
			}
			f(t, newEnv(t))
		})
	}
}

func TestStopLeavesNoDescendant(t *testing.T) {
	needPump(t, "does not follow what a worker leaves outside its process group")
	containModes(t, func(t *testing.T, e *env) {
		_, addr, tok := startForkers(t, e, testport.Reserve(t), "")
		echo(t, addr, "hi")
		out, _, _ := e.nsfd("status", "--json")
		degraded := os.Getenv("NSFD_CGROUPS") == "off"
		if got := strings.Contains(out, `"containment": "degraded`); got != degraded {
			t.Errorf("status says degraded %v, want %v:\n%s", got, degraded, out)
		}
		if got := strings.Contains(e.log(), "containment degraded"); got != degraded {
			t.Errorf("log says degraded %v, want %v", got, degraded)
		}
		if out, errOut, code := e.nsfd("stop", "forker"); code != 0 {
			t.Fatalf("nsfd stop: %d %s %s", code, out, errOut)
		}
		waitFor(t, "no helper left", 10*time.Second, func() bool { return len(tokenProcs(tok, 0)) == 0 })
		waitFor(t, "the port refuses", 10*time.Second, func() bool { return refused(addr) })
	})
}

func TestMasterSIGTERMLeavesNoDescendant(t *testing.T) {
	needPump(t, "does not follow what a worker leaves outside its process group")
	containModes(t, func(t *testing.T, e *env) {
		m, addr, tok := startForkers(t, e, testport.Reserve(t), "")
		if code := m.stop(); code != 0 {
			t.Fatalf("master exited %d", code)
		}
		if left := tokenProcs(tok, 0); len(left) != 0 {
			t.Fatalf("processes left after the master exited: %v", left)
		}
		if !refused(addr) {
			t.Fatal("the port still accepts connections after the master exited")
		}
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/unified/nsfd", strconv.Itoa(m.cmd.Process.Pid))); !os.IsNotExist(err) {
			t.Errorf("the master's control group is left after it exited: %v", err)
		}
	})
}

func TestRollLeavesNoDescendantOfOldWorkers(t *testing.T) {
	needPump(t, "does not follow what a worker leaves outside its process group")
	containModes(t, func(t *testing.T, e *env) {
		m, addr, tok := startForkers(t, e, "127.0.0.1:0", "")
		old := m.workers("echo")
		script, tok2 := forkingWorker(t, e.dir)
		e.write("forker.ini", "command = "+script+"\nport = 127.0.0.1:0\ntype = notify\nmin_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 3\ngraceful_timeout = 5s\n")
		waitFor(t, "the old helpers gone", 15*time.Second, func() bool { return len(tokenProcs(tok, 0)) == 0 })
		waitFor(t, "the new helpers", 15*time.Second, func() bool { return len(tokenProcs(tok2, 0)) >= 4 })
		for _, pid := range old {
			if alive(pid) {
				t.Errorf("old worker %d still alive", pid)
			}
		}
		_ = addr
	})
}

func TestMaxRequestsLeavesNoDescendant(t *testing.T) {
	needPump(t, "does not follow what a worker leaves outside its process group")
	containModes(t, func(t *testing.T, e *env) {
		m, addr, tok := startForkers(t, e, "127.0.0.1:0", "max_requests = 1\n")
		before := m.workers("echo")
		if len(before) == 0 {
			t.Fatal("no worker")
		}
		for i := range 4 { // more than the workers: at least one reaches max_requests
			echo(t, addr, fmt.Sprint("req", i))
		}
		waitFor(t, "a worker replaced", 15*time.Second, func() bool {
			for _, pid := range before {
				if !alive(pid) {
					return true
				}
			}
			return false
		})
		for _, pid := range before {
			if alive(pid) {
				continue
			}
			waitFor(t, "the helpers of replaced worker "+strconv.Itoa(pid)+" gone", 10*time.Second, func() bool {
				return len(tokenProcs(tok, pid)) == 0
			})
		}
	})
}

// startWithFiles starts a master as env.start does, with files as its fds
// 3, 4, … (what a careless parent leaves open) and extra environment.
func (e *env) startWithFiles(files []*os.File, extraEnv ...string) *master {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), "run", "--etc", e.etc)
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), extraEnv...)
	return e.startCmd(cmd)
}

// TestWorkerGetsOnlyItsListeners: a master started with extra open
// descriptors passes none of them on; a worker holds 0–2 and its listeners
// from 3, through the pump's direct spawn, the C fast path of the shim and
// the Go shim.
func TestWorkerGetsOnlyItsListeners(t *testing.T) {
	secret, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	for _, shim := range []string{"direct", "fast", "go"} {
		t.Run(shim, func(t *testing.T) {
			e := newEnv(t)
			e.write("plain.ini", "command = /bin/sh -c 'exec sleep 100000'\nport = 127.0.0.1:0\nport = "+filepath.Join(e.dir, "p.sock")+"|unix\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
			var extra []string
			if shim != "direct" {
				extra = append(extra, "NSFD_SPAWN=shim")
			}
			if shim == "go" {
				extra = append(extra, "NSFD_SHIM_GO=1")
			}
			m := e.startWithFiles([]*os.File{secret, secret, secret}, extra...)
			var pid int
			waitFor(t, "a worker", 15*time.Second, func() bool {
				if ws := m.workers("sleep"); len(ws) == 1 {
					pid = ws[0]
					return true
				}
				return false
			})
			// sleep's dynamic loader holds a library open for a moment
			// after the exec: a leak is what stays.
			var got string
			deadline := time.Now().Add(5 * time.Second)
			for got != "0,1,2,3,4" && time.Now().Before(deadline) {
				ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
				if err != nil {
					t.Fatal(err)
				}
				var fds []string
				for _, ent := range ents {
					fds = append(fds, ent.Name())
				}
				got = strings.Join(fds, ",")
				time.Sleep(5 * time.Millisecond)
			}
			if got != "0,1,2,3,4" {
				t.Errorf("worker fds %s, want 0,1,2,3,4 (two listeners)", got)
			}
			for fd, s := range sockets(pid) {
				if fd < 3 {
					t.Errorf("fd %d is a socket %s", fd, s)
				}
			}
		})
	}
}

// TestNextMasterSweepsWhatAKilledMasterLeft: a SIGKILLed master cannot
// stop anything, and its workers die of their parent-death signal, but
// helpers that left their process group outlive it. With control groups
// they are still in its groups: the next master kills them as it starts.
func TestNextMasterSweepsWhatAKilledMasterLeft(t *testing.T) {
	needCgroups(t)
	e := newEnv(t)
	m, _, tok := startForkers(t, e, "127.0.0.1:0", "")
	m.cmd.Process.Kill()
	<-m.exited
	waitFor(t, "the workers gone", 10*time.Second, func() bool { return len(m.workers("echo")) == 0 })
	if len(tokenProcs(tok, 0)) == 0 {
		t.Fatal("no helper outlived the killed master: nothing to sweep")
	}
	m2 := e.start()
	m2.addr("forker")
	waitFor(t, "the killed master's helpers swept", 10*time.Second, func() bool {
		for _, pid := range tokenProcs(tok, 0) {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup"); !strings.Contains(string(b), "/nsfd/"+strconv.Itoa(m2.cmd.Process.Pid)+"/") {
				return false // one of the old master's
			}
		}
		return true
	})
}

// TestMasterInAPIDNamespaceSweepsNoLiveMaster: a master in a pid namespace
// of its own (a container, a benchmark's isolated master) sees no process
// behind another master's pid, yet must not take that master's groups for
// a dead one's: it judges by the master/ group, which the live master is in.
func TestMasterInAPIDNamespaceSweepsNoLiveMaster(t *testing.T) {
	needCgroups(t)
	if os.Getenv("NSFD_CGROUPS") == "off" {
		t.Skip("control groups off")
	}
	e := newEnv(t)
	e.write("echo.ini", echoConf(oneWorker))
	m := e.start()
	m.addr("echo")
	waitFor(t, "the worker", 15*time.Second, func() bool { return len(m.workers("echo")) == 1 })

	e2 := newEnv(t)
	e2.write("echo.ini", echoConf(oneWorker))
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), "run", "--etc", e2.etc)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	m2 := e2.startCmd(cmd)
	m2.addr("echo")
	if !strings.Contains(e2.log(), "pid=1 ") {
		t.Fatalf("the second master is not pid 1 of its namespace:\n%s", e2.log())
	}
	// Its root is named by its pid as /proc (the host's) names it, not 1:
	// two such masters would otherwise share one.
	if want := "/nsfd/" + strconv.Itoa(m2.cmd.Process.Pid); !strings.Contains(e2.log(), want) {
		t.Errorf("the second master's control group is not %s:\n%s", want, e2.log())
	}
	if _, errOut, code := e.nsfd("status"); code != 0 {
		t.Fatalf("the first master after the second started: status exit %d: %s", code, errOut)
	}
	select {
	case <-m.exited:
		t.Fatalf("the first master died: %v", m.err)
	default:
	}
}

// TestMastersStartingTogetherSweepNoneOfEachOther: masters started in the
// same instant each sweep the groups dead masters left while the others
// make and join theirs; none may take another for dead (CI saw a master
// SIGKILLed by the sweep of one started beside it, before it logged a line).
func TestMastersStartingTogetherSweepNoneOfEachOther(t *testing.T) {
	needCgroups(t)
	if os.Getenv("NSFD_CGROUPS") == "off" {
		t.Skip("control groups off")
	}
	var envs []*env
	for range 6 {
		e := newEnv(t)
		e.write("echo.ini", echoConf(oneWorker))
		envs = append(envs, e)
	}
	var ms []*master
	for _, e := range envs {
		ms = append(ms, e.start())
	}
	for _, m := range ms {
		m.addr("echo")
	}
	for i, m := range ms {
		select {
		case <-m.exited:
			t.Errorf("master %d died: %v", i, m.err)
		default:
			if _, errOut, code := m.e.nsfd("status"); code != 0 {
				t.Errorf("master %d: status exit %d: %s", i, code, errOut)
			}
		}
		// Each worker is in its own master's groups, in every hierarchy.
		own := "/nsfd/" + strconv.Itoa(m.cmd.Process.Pid) + "/"
		for _, pid := range m.workers("echo") {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if strings.Contains(line, "/nsfd/") && !strings.Contains(line, own) {
					t.Errorf("master %d's worker %d is in %s, not below %s", i, pid, line, own)
				}
			}
		}
	}
}
