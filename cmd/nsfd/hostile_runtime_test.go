//go:build linux

package main

// End-to-end tests of a hostile runtime (issue 12, part B): each one makes
// the attack against the real binary and checks what an operator sees.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nsfd/nsfd/registry"
)

// policyOf reads a daemon's min_servers and max_servers from `nsfd status --json`.
func (e *env) policyOf(name string) (minS, maxS int) {
	e.t.Helper()
	out, errOut, code := e.nsfd("status", "--json", name)
	if code != 0 {
		e.t.Fatalf("status --json %s: %d %s", name, code, errOut)
	}
	var st struct {
		Daemons []struct {
			Policy struct {
				Min int `json:"min_servers"`
				Max int `json:"max_servers"`
			} `json:"policy"`
		} `json:"daemons"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Daemons) != 1 {
		e.t.Fatalf("status --json %s: %v\n%s", name, err, out)
	}
	return st.Daemons[0].Policy.Min, st.Daemons[0].Policy.Max
}

// control sends one request to the control socket as any client could,
// bypassing the CLI's own checks, and returns the status code and body.
func (e *env) control(method, path string, body io.Reader) (int, string) {
	e.t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(e.dir, "var/run/nsfd.sock"))
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://nsfd"+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHostileScaleOverflow: `nsfd scale` amounts that overflow an int, or
// take max_servers past its limit, are refused with a clear error by the
// CLI and by the master alike, and SIGTTIN at the limit changes nothing.
func TestHostileScaleOverflow(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	e.write("wide.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 10000\n"))
	m := e.start()
	m.addr("echo")
	m.addr("wide")
	e.waitReady()

	for _, n := range []string{"+9223372036854775807", "+9223372036854775805", "-9223372036854775808", "+10001"} {
		_, errOut, code := e.nsfd("scale", "echo", n)
		if code != 2 || !strings.Contains(errOut, "out of range (at most 10000)") {
			t.Errorf("nsfd scale echo %s: exit %d, %q; want exit 2 and the limit named", n, code, errOut)
		}
		// The master refuses it as well when a client skips the CLI.
		status, body := e.control("POST", "/v1/daemons/echo/scale?n="+strings.ReplaceAll(n, "+", "%2B"), nil)
		if status != http.StatusBadRequest || !strings.Contains(body, "out of range") {
			t.Errorf("POST scale?n=%s: %d %s; want 400 naming the range", n, status, body)
		}
	}
	if minS, maxS := e.policyOf("echo"); minS != 1 || maxS != 2 {
		t.Errorf("echo after refused scales: min_servers %d, max_servers %d; want 1 and 2", minS, maxS)
	}
	if _, errOut, code := e.nsfd("scale", "wide", "+1"); code != 1 || !strings.Contains(errOut, "max_servers would be 10001, more than the limit of 10000") {
		t.Errorf("scale past the limit: exit %d, %q", code, errOut)
	}
	// SIGTTIN scales every daemon by one: echo grows, wide is at its limit and stays.
	m.cmd.Process.Signal(syscall.SIGTTIN)
	waitFor(t, "the refusal in the log", 10*time.Second, func() bool {
		return strings.Contains(e.log(), "scale wide: bad scale: max_servers would be 10001, more than the limit of 10000")
	})
	if minS, maxS := e.policyOf("wide"); minS != 1 || maxS != 10000 {
		t.Errorf("wide after SIGTTIN: min_servers %d, max_servers %d; want 1 and 10000", minS, maxS)
	}
	if minS, maxS := e.policyOf("echo"); minS != 2 || maxS != 3 {
		t.Errorf("echo after SIGTTIN: min_servers %d, max_servers %d; want 2 and 3", minS, maxS)
	}
	if out, _, code := e.nsfd("scale", "echo", "-1"); code != 0 || !strings.Contains(out, "min_servers 1, max_servers 2") {
		t.Errorf("scale -1 after the refusals: %d %q", code, out)
	}
}

// TestHostileSocketFileReplaced: a regular file put where a daemon's UNIX
// socket was is still there after the daemon stops, and after the master
// stops; the log says why it was left.
func TestHostileSocketFileReplaced(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.dir, "var", "run", "echo.sock")
	e.write("echo.ini", "command = "+filepath.Join(binDir, "echo")+"\nport = "+sock+"|unix\ntype = notify\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	m.addr("echo")
	echo(t, sock, "before")
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, []byte("not yours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.nsfd("stop", "echo"); code != 0 {
		t.Fatalf("stop echo: %d %s", code, errOut)
	}
	if b, err := os.ReadFile(sock); err != nil || string(b) != "not yours\n" {
		t.Fatalf("after the daemon stopped, the file in its socket's place: %q, %v", b, err)
	}
	if !strings.Contains(e.log(), "socket file replaced since bind: not removing it") {
		t.Error("the log does not say why the file was left")
	}
	if code := m.stop(); code != 0 {
		t.Fatalf("master exit %d", code)
	}
	if b, err := os.ReadFile(sock); err != nil || string(b) != "not yours\n" {
		t.Fatalf("after the master stopped: %q, %v", b, err)
	}
}

// escapeWorker is a worker that reports a STATUS= full of terminal escapes
// (ESC, an OSC title, C1 CSI, bidi overrides) and prints lines with more,
// raw 0x9b included, then waits.
const escapeWorker = `import os, socket, sys, time
status = "STATUS=\x1b]0;owned\x07\x1b[31mred \u009b31m \u202eevil\u2066 \u2029end"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(status.encode(), os.environ["NOTIFY_SOCKET"])
sys.stdout.buffer.write(b"line \x1b[2J\x9b31m \xc2\x9b \xe2\x80\xae reversed \xe2\x81\xa6 isolate\n")
sys.stdout.buffer.write(b"\x1b]8;;http://evil/\x07link\x1b]8;;\x07\n")
sys.stdout.flush()
time.sleep(1000)
`

// wantStatus is the STATUS= text of escapeWorker, as JSON must carry it.
const wantStatus = "\x1b]0;owned\x07\x1b[31mred \u009b31m \u202eevil\u2066 \u2029end"

// rawControl names the first thing in b, newlines aside, that could act on
// a terminal, or returns "".
func rawControl(b []byte) string {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			return fmt.Sprintf("the raw byte %#x", b[0])
		case r < 0x20 && r != '\n' && r != '\t', r == 0x7f, r >= 0x80 && r <= 0x9f,
			r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x2028 && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return fmt.Sprintf("the raw %U", r)
		}
		b = b[n:]
	}
	return ""
}

// TestHostileTerminalEscapes: what a worker reports or prints reaches the
// operator escaped — in `nsfd status`, the central log (text and json) and
// `nsfd logs` — while JSON output still carries the exact STATUS= text.
func TestHostileTerminalEscapes(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			e := newEnv(t)
			e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\nformat = "+format+"\n")
			e.write("worker.py", escapeWorker)
			e.write("esc.ini", "command = python3 "+filepath.Join(e.etc, "worker.py")+"\nport = 127.0.0.1:0\n"+
				"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
			e.start()
			e.waitReady()
			waitFor(t, "the worker's lines in the log", 15*time.Second, func() bool { return strings.Contains(e.log(), "link") })
			var out string
			waitFor(t, "the worker's STATUS= in nsfd status", 15*time.Second, func() bool {
				o, _, code := e.nsfd("status", "esc")
				out = o
				return code == 0 && strings.Contains(o, "owned")
			})
			if bad := rawControl([]byte(out)); bad != "" {
				t.Errorf("nsfd status prints %s:\n%q", bad, out)
			}
			if want := `\x1b]0;owned\x07\x1b[31mred \u009b31m \u202eevil\u2066 \u2029end`; !strings.Contains(out, want) {
				t.Errorf("nsfd status lacks the escaped STATUS %s:\n%s", want, out)
			}

			js, _, code := e.nsfd("status", "--json", "esc")
			if bad := rawControl([]byte(js)); code != 0 || bad != "" {
				t.Errorf("nsfd status --json: exit %d, prints %s", code, bad)
			}
			var st struct {
				Daemons []struct {
					Workers []struct{ Status string } `json:"workers"`
				} `json:"daemons"`
			}
			if err := json.Unmarshal([]byte(js), &st); err != nil || len(st.Daemons) != 1 || len(st.Daemons[0].Workers) != 1 || st.Daemons[0].Workers[0].Status != wantStatus {
				t.Errorf("nsfd status --json does not carry the STATUS= text exactly: %v\n%s", err, js)
			}

			log, err := os.ReadFile(e.logFile())
			if err != nil {
				t.Fatal(err)
			}
			if bad := rawControl(log); bad != "" {
				t.Errorf("the central log holds %s", bad)
			}
			want := `line \x1b[2J\x9b31m \u009b \u202e reversed \u2066 isolate`
			if format == "json" {
				want = `line \u001b[2J\ufffd31m \u009b \u202e reversed \u2066 isolate`
			}
			if !strings.Contains(string(log), want) {
				t.Errorf("the central log lacks the escaped worker line %s", want)
			}
			for _, args := range [][]string{{"logs", "-n", "-1"}, {"logs", "-n", "-1", "--json"}} {
				out, errOut, code := e.nsfd(args...)
				if bad := rawControl([]byte(out)); code != 0 || bad != "" || !strings.Contains(out, "isolate") {
					t.Errorf("nsfd %s: exit %d %s, prints %s", strings.Join(args, " "), code, errOut, bad)
				}
			}
		})
	}
}

// TestHostileRegistryRowEscapes: every framework worker holds the registry's
// DSN and can write rows; what `nsfd resolve` prints of them cannot act on
// the operator's terminal.
func TestHostileRegistryRowEscapes(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Dir(e.sqlite()), 0o750); err != nil {
		t.Fatal(err)
	}
	node, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := registry.Open(ctx, "sqlite", e.sqlite())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	evil := "127.0.0.1:1\x1b]0;owned\x07\u202e\x9b"
	if err := reg.Register(ctx, registry.Daemon{Node: node, Name: "evil", Encoding: "json", MasterPID: os.Getpid(),
		Endpoints: []registry.Endpoint{{Proto: "tcp", Address: evil}}}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"resolve", "evil"}, {"resolve", "--json", "evil"}} {
		out, errOut, code := e.nsfd(args...)
		if code != 0 || !strings.Contains(out, "127.0.0.1:1") {
			t.Fatalf("nsfd %s: %d %q %q", strings.Join(args, " "), code, out, errOut)
		}
		if bad := rawControl([]byte(out)); bad != "" {
			t.Errorf("nsfd %s prints %s: %q", strings.Join(args, " "), bad, out)
		}
	}
}
