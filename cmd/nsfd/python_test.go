//go:build linux

package main

// End-to-end tests of the framework protocol in Python (examples/python),
// written from docs/wire.md alone: the greet daemon under a real master,
// called by `nsfd call`, the Go client package and the Python client; the
// Python client calling the Go kv daemon; asynchronous calls through the
// built-in queue both ways.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

var (
	pythonOnce sync.Once
	pythonPath string
)

// python3 returns the real interpreter (not a shim that execs it, which
// slows every start), or skips the test without one.
func python3(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		if _, err := exec.LookPath("python3"); err != nil {
			return
		}
		out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		if err == nil {
			pythonPath = strings.TrimSpace(string(out))
		}
	})
	if pythonPath == "" {
		t.Skip("python3 is not installed: the Python framework examples are not tested")
	}
	return pythonPath
}

// pyEnv is a master running greet (Python), kv (Go) and the queue.
func pyEnv(t *testing.T) (*env, *master) {
	t.Helper()
	py := python3(t)
	e := newEnv(t)
	e.setRegistry("[registry]\nheartbeat = 1s\n") // a loaded machine does not make it stale
	e.write("greet.ini", "command = "+py+" "+filepath.Join(repoDir, "examples", "python", "greet.py")+"\n"+
		"port = 127.0.0.1:0\ntype = notify\nready_timeout = 60s\n"+
		"min_servers = 2\nmax_servers = 4\nmin_spare_servers = 0\nmax_spare_servers = 2\n")
	// The same daemon with the json+gzip codec, which its clients learn
	// from the registry.
	e.write("greetz.ini", "command = "+py+" "+filepath.Join(repoDir, "examples", "python", "greet.py")+"\n"+
		"port = 127.0.0.1:0\ntype = notify\nready_timeout = 60s\nencoding = json+gzip\n"+
		"min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n")
	e.write("kv.ini", kvConf(filepath.Join(e.dir, "var", "kv"), "", ""))
	e.write("queue.ini", queueConf(""))
	m := e.start()
	e.waitCall("greet")
	e.waitCall("kv")
	e.waitCall("greetz")
	return e, m
}

// callPy runs examples/python/call.py with args; NSFD is the nsfd binary,
// for the names it resolves with `nsfd resolve`.
func (e *env) callPy(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(pythonPath, append([]string{filepath.Join(repoDir, "examples", "python", "call.py")}, args...)...)
	cmd.Env = append(cmd.Environ(), "NSFD="+filepath.Join(binDir, "nsfd"))
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return o.String(), er.String(), code
}

var jobIDRE = regexp.MustCompile(`^[0-9a-f]{32}@.+$`)

func TestPythonFramework(t *testing.T) {
	e, m := pyEnv(t)
	t.Run("nsfd call", func(t *testing.T) { pyNsfdCall(t, e) })
	t.Run("Go client", func(t *testing.T) { pyGoClient(t, e) })
	t.Run("Python client", func(t *testing.T) { pyClient(t, e) })
	t.Run("bad frames", func(t *testing.T) { pyRawFrames(t, m.addr("greet")) })
	t.Run("SIGTERM", func(t *testing.T) { pyGracefulStop(t, e) })
}

// pyNsfdCall calls greet with `nsfd call`: data, error codes, an
// asynchronous result through the queue, a client that gives up.
func pyNsfdCall(t *testing.T, e *env) {
	call := func(args ...string) (string, string, int) {
		t.Helper()
		return e.nsfd(append([]string{"call", "greet"}, args...)...)
	}
	if out, errOut, code := call("hello", `{"name":"ann"}`); code != 0 || out != "hello, ann\n" {
		t.Fatalf("hello: %d %q %q", code, out, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hello"}, "nsfd: 2003 Required parameter missing: name"},
		{[]string{"hello", `{"name":"` + strings.Repeat("x", 65) + `"}`}, "nsfd: 2004 Parameter value range error: name over 64 bytes"},
		{[]string{"slow", `{"ms":-1}`}, "nsfd: 2004 Parameter value range error: ms -1 (0 to 60000)"},
		{[]string{"frobnicate"}, `nsfd: 2000 Unknown command: "frobnicate"`},
	} {
		if out, errOut, code := call(c.args...); code != 1 || out != "" || strings.TrimSpace(errOut) != c.want {
			t.Errorf("call greet %q: %d %q %q, want exit 1 and %q", c.args, code, out, errOut, c.want)
		}
	}
	if out, errOut, code := e.nsfd("call", "greetz", "hello", `{"name":"gzip"}`); code != 0 || out != "hello, gzip\n" {
		t.Errorf("greetz (json+gzip) hello: %d %q %q", code, out, errOut)
	}
	out, errOut, code := call("later", `{"name":"bob","ms":200}`, "--json")
	var resp wire.Response
	if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Code != wire.CodeOK ||
		string(resp.Data) != `"hello later, bob"` || !jobIDRE.MatchString(resp.Meta.Transaction) {
		t.Fatalf("later: %d %q %q %v", code, out, errOut, err)
	}
	// The protocol has no timeout: a client that gives up hangs up, and the
	// slow command notices.
	start := time.Now()
	if _, errOut, code := call("slow", `{"ms":5000}`, "--timeout", "1s"); code != 1 || time.Since(start) > 4*time.Second {
		t.Errorf("slow with --timeout 1s: %d %q after %v", code, errOut, time.Since(start))
	}
	waitFor(t, "greet noticing the client left", 10*time.Second, func() bool {
		return strings.Contains(e.log(), "slow: the client left before 5000 ms")
	})
}

// pyGoClient calls greet with the client package.
func pyGoClient(t *testing.T, e *env) {
	ctx, c := goClient(t, e)
	goCall := func(command, data string) *wire.Response {
		t.Helper()
		req := &wire.Request{Command: command, ID: "t-1", User: "go"}
		if data != "" {
			req.Data = json.RawMessage(data)
		}
		resp, err := c.Call(ctx, "greet", req)
		if err != nil {
			t.Fatalf("client: %s: %v", command, err)
		}
		return resp
	}
	if r := goCall("hello", `{"name":"go"}`); r.Code != wire.CodeOK || string(r.Data) != `"hello, go"` ||
		r.Meta.Transaction != "t-1" || r.Meta.User != "go" || r.Meta.Duration <= 0 {
		t.Errorf("client hello: %+v", r)
	}
	if r := goCall("hello", ""); r.Code != wire.CodeMissingParam || r.Message != "Required parameter missing: name" {
		t.Errorf("client hello without a name: %+v", r)
	}
	if r := goCall("later", `{"name":"go","ms":50}`); r.Code != wire.CodeOK || string(r.Data) != `"hello later, go"` {
		t.Errorf("client later: %+v", r)
	}
	p, err := c.CallAsync(ctx, "greet", &wire.Request{Command: "later", Data: json.RawMessage(`{"name":"async"}`)})
	if err != nil || !jobIDRE.MatchString(p.ID()) {
		t.Fatalf("client CallAsync later: %v %v", p, err)
	}
	if r, err := p.Wait(ctx); err != nil || string(r.Data) != `"hello later, async"` {
		t.Errorf("client Wait: %+v %v", r, err)
	}
}

// goClient is a client package Client on e's registry.
func goClient(t *testing.T, e *env) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	reg, err := registry.Open(ctx, registry.TypeSQLite, e.sqlite())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	c := client.New(reg, client.Options{})
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

// pyClient calls greet and kv with examples/python/call.py: through the
// master's resolver socket, as a worker would (NSFD_RESOLVER), and through
// `nsfd resolve NAME --json`, as a person would. Each case's err is a part
// of its stderr.
func pyClient(t *testing.T, e *env) {
	sock := "--resolver=" + filepath.Join(e.dir, "var", "run", "resolve.sock")
	etc := "--etc=" + e.etc
	for _, c := range []struct {
		args     []string
		out, err string
		code     int
	}{
		{[]string{sock, "greet", "hello", `{"name":"py"}`}, "hello, py\n", "", 0},
		{[]string{sock, "greet", "hello"}, "", "call.py: 2003 Required parameter missing: name\n", 1},
		{[]string{sock, "greet", "nope"}, "", "call.py: 2000 Unknown command: \"nope\"\n", 1},
		{[]string{sock, "greet", "later", `{"name":"py","ms":100}`}, "hello later, py\n", "", 0},
		{[]string{sock, "kv", "put", `{"key":"a","value":"12"}`}, "{\n  \"key\": \"a\"\n}\n", "", 0},
		{[]string{etc, "kv", "get", `{"key":"a"}`}, "12\n", "", 0},
		{[]string{etc, "kv", "get", `{"key":"b"}`}, "", "call.py: 2303 Object does not exist: key \"b\"\n", 1},
		{[]string{etc, "kv", "reindex"}, "{\n  \"keys\": 1,\n  \"bytes\": 4\n}\n", "", 0},
		{[]string{sock, "kv", "reindex", `{"delay_ms":50}`}, "{\n  \"keys\": 1,\n  \"bytes\": 4\n}\n", "", 0},
		{[]string{etc, "greet", "hello", `{"name":"by hand"}`}, "hello, by hand\n", "", 0},
		{[]string{sock, "greetz", "hello", `{"name":"gz"}`}, "hello, gz\n", "", 0},
		{[]string{sock, "greetz", "later", `{"name":"gz"}`}, "hello later, gz\n", "", 0},
		{[]string{etc, "nope", "hello"}, "", `"nope": not registered`, 1},
	} {
		out, errOut, code := e.callPy(c.args...)
		if out != c.out || code != c.code || c.err == "" && errOut != "" || !strings.Contains(errOut, c.err) {
			t.Errorf("call.py %q: %d %q %q, want %d %q %q", c.args, code, out, errOut, c.code, c.out, c.err)
		}
	}
	// --json prints the whole response, an error's too.
	out, _, code := e.callPy(sock, "--json", "greet", "hello")
	if code != 1 || !strings.Contains(out, `"code": 2003`) {
		t.Errorf("call.py --json of an error: %d %q", code, out)
	}
	// An asynchronous call waited for later, by its job id.
	out, errOut, code := e.callPy(sock, "--no-wait", "greet", "later", `{"name":"then"}`)
	job := strings.TrimSpace(out)
	if code != 0 || !jobIDRE.MatchString(job) {
		t.Fatalf("call.py --no-wait: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := e.callPy(etc, "--job", job); code != 0 || out != "hello later, then\n" {
		t.Errorf("call.py --job %s: %d %q %q", job, code, out, errOut)
	}
	if _, errOut, code := e.callPy(sock, "--job", "0123@nowhere"); code != 1 || !strings.Contains(errOut, "2303") {
		t.Errorf("call.py --job of no job: %d %q", code, errOut)
	}
}

// pyGracefulStop stops greet while a slow call and an asynchronous job are
// in progress: the worker finishes both, then exits 0.
func pyGracefulStop(t *testing.T, e *env) {
	ctx, c := goClient(t, e)
	job, err := c.CallAsync(ctx, "greet", &wire.Request{Command: "later", Data: json.RawMessage(`{"name":"stop","ms":1500}`)})
	if err != nil || job.ID() == "" {
		t.Fatalf("later before the stop: %v %v", job, err)
	}
	done := make(chan *wire.Response, 1)
	go func() {
		resp, err := c.Call(ctx, "greet", &wire.Request{Command: "slow", Data: json.RawMessage(`{"ms":1500}`)})
		if err != nil {
			t.Errorf("slow across the stop: %v", err)
		}
		done <- resp
	}()
	waitFor(t, "the slow call in progress", 10*time.Second, func() bool { return strings.Contains(e.log(), "slow: 1500 ms") })
	if _, errOut, code := e.nsfd("stop", "greet"); code != 0 {
		t.Fatalf("stop greet: %d %q", code, errOut)
	}
	if r := <-done; r == nil || r.Code != wire.CodeOK || compact(r.Data) != `{"slept_ms":1500}` {
		t.Errorf("slow across the stop: %+v", r)
	}
	if r, err := job.Wait(ctx); err != nil || string(r.Data) != `"hello later, stop"` {
		t.Errorf("the job accepted before the stop: %+v %v", r, err)
	}
	exited := regexp.MustCompile(`nsfd\.greet: worker exited: pid=\d+ cause=stopped exit="status 0"`)
	waitFor(t, "greet's workers exiting 0", 20*time.Second, func() bool {
		return len(exited.FindAllString(e.log(), -1)) >= 2
	})
}

// pyRawFrames checks greet's answers to bad frames: a payload that does not
// decode is answered with 2001 and the connection stays usable; a length over
// the limit is answered with 2500 and the connection closed.
func pyRawFrames(t *testing.T, addr string) {
	t.Helper()
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(payload []byte, length uint32) {
		t.Helper()
		b := binary.BigEndian.AppendUint32(nil, length)
		if _, err := conn.Write(append(b, payload...)); err != nil {
			t.Fatal(err)
		}
	}
	send([]byte("{not json"), 9)
	if r, err := readResponse(conn); err != nil || r.Code != wire.CodeSyntaxError {
		t.Fatalf("garbage: %+v %v", r, err)
	}
	send([]byte(`{"command":""}`), 14)
	if r, err := readResponse(conn); err != nil || r.Code != wire.CodeMissingParam || r.Meta.Transaction == "" {
		t.Fatalf("empty command: %+v %v", r, err)
	}
	send(nil, 17<<20)
	if r, err := readResponse(conn); err != nil || r.Code != wire.CodeFailedClosing {
		t.Fatalf("oversized frame: %+v %v", r, err)
	}
	if _, err := readResponse(conn); !closed(err) {
		t.Fatalf("after 2500 the connection is not closed: %v", err)
	}
}
