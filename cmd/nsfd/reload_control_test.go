//go:build linux

package main

// End-to-end tests of the control socket and its CLI verbs, and the helpers
// that read a master's status through it.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
)

type statusJSON struct {
	PID     int `json:"pid"`
	Reloads int `json:"reloads"`
	Daemons []struct {
		Name        string   `json:"name"`
		State       string   `json:"state"`
		ConfigError string   `json:"config_error"`
		Listeners   []string `json:"listeners"`
		Workers     []struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
		} `json:"workers"`
		Requests int `json:"requests"`
	} `json:"daemons"`
	Errors []struct{ File, Error string } `json:"errors"`
}

// status asks the master's control socket directly (the CLI's own output
// is tested in TestControlCLI; this is cheaper to poll).
func (e *env) status() statusJSON {
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
		e.t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	var st statusJSON
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st
}

// daemon returns a daemon's entry in st, or nil.
func (st statusJSON) daemon(name string) *struct {
	Name        string   `json:"name"`
	State       string   `json:"state"`
	ConfigError string   `json:"config_error"`
	Listeners   []string `json:"listeners"`
	Workers     []struct {
		PID   int    `json:"pid"`
		State string `json:"state"`
	} `json:"workers"`
	Requests int `json:"requests"`
} {
	for i := range st.Daemons {
		if st.Daemons[i].Name == name {
			return &st.Daemons[i]
		}
	}
	return nil
}

func (e *env) pids(name string) map[int]bool {
	out := map[int]bool{}
	if d := e.status().daemon(name); d != nil {
		for _, w := range d.Workers {
			out[w.PID] = true
		}
	}
	return out
}

// waitReady waits for the control socket to answer.
func (e *env) waitReady() {
	e.t.Helper()
	waitFor(e.t, "control socket", 15*time.Second, func() bool {
		c, err := net.Dial("unix", filepath.Join(e.dir, "var/run/nsfd.sock"))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func TestControlCLI(t *testing.T) {
	e := newEnv(t)
	// On a port held for the test: once echo stops, a freed port of its
	// could be given to another test process's echo server.
	e.write("echo.ini", strings.Replace(echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 6\n"),
		"127.0.0.1:0", testport.Reserve(t), 1))
	// Nothing runs yet: the CLI says where it looked.
	_, errOut, code := e.nsfd("status")
	if code != 3 || !strings.Contains(errOut, "cannot reach the master at "+filepath.Join(e.dir, "var/run/nsfd.sock")) {
		t.Fatalf("status without a master: %d %q", code, errOut)
	}
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	fi, err := os.Stat(filepath.Join(e.dir, "var/run/nsfd.sock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, %v; want 0600", fi.Mode(), err)
	}

	waitFor(t, "2 idle workers", 10*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d != nil && d.State == "running" && len(d.Workers) == 2 && d.Workers[0].State == "idle" && d.Workers[1].State == "idle"
	})
	st := e.status()
	d := st.daemon("echo")
	if d == nil || d.State != "running" || len(d.Workers) != 2 || d.Workers[0].PID == 0 || d.Listeners[0] != "tcp "+addr {
		t.Fatalf("status --json: %+v", st)
	}
	out, _, code := e.nsfd("status", "echo")
	if code != 0 || !strings.Contains(out, "echo") || !strings.Contains(out, "PID") {
		t.Errorf("status echo:\n%s", out)
	}
	if _, errOut, code := e.nsfd("status", "nope"); code != 4 || !strings.Contains(errOut, "no such daemon") {
		t.Errorf("status of an unknown daemon: %d %q", code, errOut)
	}
	if _, _, code := e.nsfd("scale", "echo"); code != 2 {
		t.Errorf("scale without a number: exit %d, want 2", code)
	}
	if out, _, code := e.nsfd("scale", "echo", "+2"); code != 0 || !strings.Contains(out, "min_servers 4, max_servers 8") {
		t.Errorf("scale +2: %d %q", code, out)
	}
	waitFor(t, "4 workers", 10*time.Second, func() bool { return len(e.pids("echo")) == 4 })
	if out, _, code := e.nsfd("scale", "echo", "3"); code != 0 || !strings.Contains(out, "min_servers 3, max_servers 7") {
		t.Errorf("scale 3: %d %q", code, out)
	}
	if _, _, code := e.nsfd("stop", "echo"); code != 0 {
		t.Fatal("stop failed")
	}
	if d := e.status().daemon("echo"); d.State != "stopped" || len(d.Workers) != 0 {
		t.Errorf("after stop: %+v", d)
	}
	if tryEcho(addr, "stopped") == nil {
		t.Error("a stopped daemon answers")
	}
	if _, _, code := e.nsfd("start", "echo"); code != 0 {
		t.Fatal("start failed")
	}
	// Its port is bound again.
	waitFor(t, "echo back", 10*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d.State == "running" && tryEcho(strings.Fields(d.Listeners[0])[1], "started") == nil
	})
	if out, _, code := e.nsfd("reload"); code != 0 || !strings.Contains(out, "reloaded") {
		t.Errorf("reload: %d %q", code, out)
	}

	// Another uid is refused: it cannot even open the 0600 socket, and the
	// master checks peer credentials behind that.
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), "--etc", e.etc, "status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	os.Chmod(e.dir, 0o755)
	outb, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "permission denied") {
		t.Errorf("nobody ran nsfd status: %v\n%s", err, outb)
	}
	// Even with the socket opened up, the credential check refuses.
	os.Chmod(filepath.Join(e.dir, "var/run/nsfd.sock"), 0o666)
	os.Chmod(filepath.Join(e.dir, "var/run"), 0o755)
	os.Chmod(filepath.Join(e.dir, "var"), 0o755)
	os.Chmod(e.etc, 0o755)
	os.Chmod(filepath.Join(e.etc, "nsfd.ini"), 0o644)
	cmd = exec.Command(filepath.Join(binDir, "nsfd"), "--etc", e.etc, "status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	outb, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "uid 65534 may not control this master") {
		t.Errorf("nobody with an open socket: %v\n%s", err, outb)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\nmetrics_addr = 127.0.0.1:0\n[log]\nfile = ../var/log/nsfd.log\n")
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n"))
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	echo(t, addr, "count me")
	out, err := exec.Command("curl", "-s", "--unix-socket", filepath.Join(e.dir, "var/run/nsfd.sock"), "http://nsfd/metrics").Output()
	if err != nil {
		t.Skipf("curl: %v", err)
	}
	for _, want := range []string{`nsfd_workers{daemon="echo",state="idle"}`, `nsfd_worker_spawns_total{daemon="echo"} 2`, "nsfd_reloads_total 1", "nsfd_log_lines_dropped_total 0", `nsfd_requests_total{daemon="echo"}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The same on metrics_addr, over TCP.
	var maddr string
	waitFor(t, "the metrics address in the log", 10*time.Second, func() bool {
		mm := regexp.MustCompile(`nsfd: metrics: addr=(\S+)`).FindStringSubmatch(e.log())
		if mm != nil {
			maddr = mm[1]
		}
		return mm != nil
	})
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `nsfd_worker_spawns_total{daemon="echo"} 2`) {
		t.Errorf("metrics_addr serves:\n%s", body)
	}
}
