//go:build linux

package main

// End-to-end tests of the resource limits on this machine's control
// groups: memory_max (an OOM kill, attributed), pids_max (a fork bomb
// stopped without hurting another daemon), max_rss (graceful recycling under
// load, no failed request).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// needCgroups skips a test when the master under test would have no
// control groups.
func needCgroups(t *testing.T) {
	t.Helper()
	if os.Getenv("NSFD_CGROUPS") == "off" || os.Geteuid() != 0 {
		t.Skip("needs control groups (root, NSFD_CGROUPS not off)")
	}
}

// needPump skips a test of what only the Linux process backend (the pump)
// does, when the suite runs on the portable one (NSFD_PROCESS_BACKEND=
// portable, as CI runs it too): why says what the portable backend does
// not do, as docs/security.md and docs/upgrade.md say.
func needPump(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("NSFD_PROCESS_BACKEND") == "portable" {
		t.Skip("the portable process backend " + why)
	}
}

// daemonStatus returns one daemon's entry of `nsfd status --json`.
func daemonStatusJSON(t *testing.T, e *env, name string) map[string]any {
	t.Helper()
	out, errOut, code := e.nsfd("status", "--json")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	var st struct {
		Daemons []map[string]any `json:"daemons"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, d := range st.Daemons {
		if d["name"] == name {
			return d
		}
	}
	t.Fatalf("no daemon %s in status:\n%s", name, out)
	return nil
}

func TestMemoryMaxOOMKillAttributed(t *testing.T) {
	needCgroups(t)
	e := newEnv(t)
	hog := filepath.Join(e.dir, "hog.py")
	if err := os.WriteFile(hog, []byte("import time\nchunks = []\nwhile True:\n    chunks.append(b'x' * (4 << 20))\n    time.sleep(0.01)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\nmetrics_addr = 127.0.0.1:0\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	e.write("hog.ini", "command = python3 "+hog+"\nport = 127.0.0.1:0\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\nmemory_max = 64M\nstart_seconds = 0\n")
	e.start()
	waitFor(t, "an OOM kill in the log", 20*time.Second, func() bool {
		return strings.Contains(e.log(), "killed by the kernel's OOM killer: memory_max 64MiB")
	})
	waitFor(t, "oom_kills in status", 10*time.Second, func() bool {
		n, _ := daemonStatusJSON(t, e, "hog")["oom_kills"].(float64)
		return n >= 1
	})
	out, _, _ := e.nsfd("status")
	if !strings.Contains(out, "containment: hybrid") && !strings.Contains(out, "containment: cgroup2") {
		t.Errorf("status text does not show the control groups:\n%s", out)
	}
	if !regexp.MustCompile(`oom kills [1-9]`).MatchString(out) {
		t.Errorf("status text does not show the OOM kill:\n%s", out)
	}
	m := metricsAddrRE.FindStringSubmatch(e.log())
	if m == nil {
		t.Fatal("no metrics address in the log")
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{`nsfd_oom_kills_total\{daemon="hog"\} [1-9]`, `nsfd_daemon_memory_bytes\{daemon="hog"\} `, `nsfd_daemon_cpu_seconds_total\{daemon="hog"\} `, `nsfd_daemon_processes\{daemon="hog"\} `} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("metrics lack %s", re)
		}
	}
}

func TestPidsMaxStopsForkBombOthersServe(t *testing.T) {
	needCgroups(t)
	e := newEnv(t)
	tok := fmt.Sprint(os.Getpid(), containSeq.Add(1))
	// A bounded bomb: 300 processes wanted, pids_max allows 40.
	bomb := filepath.Join(e.dir, "bomb.sh")
	if err := os.WriteFile(bomb, []byte("#!/bin/sh\ni=0\nwhile [ $i -lt 300 ]; do sleep 100000 0."+tok+" 2>/dev/null & i=$((i+1)); done\nexec sleep 100000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("bomb.ini", "command = "+bomb+"\nport = 127.0.0.1:0\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\npids_max = 40\n")
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n"))
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "the bomb to hit its limit", 20*time.Second, func() bool {
		for _, line := range strings.Split(e.log(), "\n") {
			if strings.Contains(line, "bomb[") && strings.Contains(line, "stderr") && strings.Contains(strings.ToLower(line), "fork") {
				return true // the shell could not fork: the limit holds
			}
		}
		return false
	})
	if n := len(tokenProcs(tok, 0)); n > 40 {
		t.Errorf("%d processes of the bomb, pids_max is 40", n)
	}
	for i := range 5 {
		echo(t, addr, fmt.Sprint("alive ", i))
	}
}

func TestMaxRSSRecyclesWithoutFailures(t *testing.T) {
	e := newEnv(t)
	grow := filepath.Join(e.dir, "grow.py")
	// A sequential echo worker whose memory grows by 4 MiB every 50 ms. On
	// SIGTERM it finishes the connection it serves (the client closes it)
	// and exits; it stops only between connections.
	py := `import os, select, signal, socket, threading, time
chunks = []
def grow():
    while True:
        chunks.append(b'x' * (4 << 20))
        time.sleep(0.05)
threading.Thread(target=grow, daemon=True).start()
lst = socket.socket(fileno=3)
lst.setblocking(False)
stopping = False
def on_term(signum, frame):
    global stopping
    stopping = True
signal.signal(signal.SIGTERM, on_term)
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
while not stopping:
    r, _, _ = select.select([lst, wake_r], [], [])
    if lst not in r:
        continue
    try:
        conn, _ = lst.accept()
    except BlockingIOError:
        continue
    conn.setblocking(True)
    f = conn.makefile('rwb')
    for line in f:
        f.write(line)
        f.flush()
    conn.close()
`
	if err := os.WriteFile(grow, []byte(py), 0o644); err != nil {
		t.Fatal(err)
	}
	e.write("grow.ini", "command = python3 "+grow+"\nport = 127.0.0.1:0\ntype = simple\nmin_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\nmax_rss = 80M\ngraceful_timeout = 5s\n")
	m := e.start()
	addr := m.addr("grow")
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for c := range 2 { // a bounded load: two clients, one request at a time each
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := tryEcho(addr, fmt.Sprint("c", c, " ", i)); err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	waitFor(t, "two workers recycled for max_rss", 30*time.Second, func() bool {
		n, _ := daemonStatusJSON(t, e, "grow")["rss_recycles"].(float64)
		return n >= 2
	})
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	_ = m
}

// TestCPUGroupOnlyWithACPULimit: the cpu controller costs every wakeup, so
// a daemon is put in a cpu group only when it sets cpu_weight or cpu_max
// (as systemd does): a daemon without stays, with the master, in the cpu
// group the master was started in; one with a limit gets it, applied, with
// its workers in it (no level of their own).
func TestCPUGroupOnlyWithACPULimit(t *testing.T) {
	needCgroups(t)
	e := newEnv(t)
	e.write("plain.ini", echoConf(oneWorker))
	e.write("capped.ini", echoConf(oneWorker+"cpu_max = 50%\ncpu_weight = 50\n"))
	m := e.start()
	m.addr("plain")
	m.addr("capped")
	waitFor(t, "both workers", 15*time.Second, func() bool {
		return len(e.pids("plain")) == 1 && len(e.pids("capped")) == 1
	})
	cpuLine := func(pid int) (string, bool) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(line, ":", 3); len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "cpu") {
				return f[2], true
			}
		}
		return "", false
	}
	master, ok := cpuLine(m.cmd.Process.Pid)
	if !ok {
		t.Skip("no cgroup v1 cpu hierarchy (pure cgroup2: the controller is turned on in subtree_control instead)")
	}
	if strings.Contains(master, "/nsfd/") {
		t.Errorf("the master moved into a cpu group of nsfd's: %s", master)
	}
	if plain, _ := cpuLine(onePid(e.pids("plain"))); plain != master {
		t.Errorf("a worker of a daemon without a cpu limit is in cpu group %s, want the master's %s", plain, master)
	}
	// In its daemon's group, where the limits are: not one of its own below it.
	capped, _ := cpuLine(onePid(e.pids("capped")))
	if !strings.HasSuffix(capped, "/nsfd/"+strconv.Itoa(m.cmd.Process.Pid)+"/capped") {
		t.Fatalf("a worker of a daemon with cpu_max is in cpu group %s, want its daemon's", capped)
	}
	mnt := cgroupV1Mount(t, "cpu")
	daemonDir := filepath.Join(mnt, capped)
	if b, _ := os.ReadFile(filepath.Join(daemonDir, "cpu.cfs_quota_us")); strings.TrimSpace(string(b)) != "50000" {
		t.Errorf("cpu_max 50%%: cpu.cfs_quota_us %q of %s", b, daemonDir)
	}
	if b, _ := os.ReadFile(filepath.Join(daemonDir, "cpu.shares")); strings.TrimSpace(string(b)) != "512" {
		t.Errorf("cpu_weight 50: cpu.shares %q", b)
	}
}

// onePid is the pid of a set of one.
func onePid(pids map[int]bool) int {
	for pid := range pids {
		return pid
	}
	return 0
}

// cgroupV1Mount is where the v1 hierarchy of controller ctl is mounted.
func cgroupV1Mount(t *testing.T, ctl string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) > 4 && len(g) > 2 && g[0] == "cgroup" && slices.Contains(strings.Split(g[2], ","), ctl) {
			return f[4]
		}
	}
	t.Fatalf("no cgroup v1 %s hierarchy mounted", ctl)
	return ""
}
