//go:build linux

package main

// End-to-end tests of framework daemons: the kv example and the built-in
// queue under a real master, called by name with `nsfd call` and the client
// package, fail-over between two nodes, and hostile input.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/internal/testport"
	"github.com/nsfd/nsfd/queue"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// registryEnv was the [env] that told a framework daemon's workers where
// the registry is; the master now sets NSFD_REGISTRY_* for every worker.
func registryEnv(string, string) string { return "" }

// kvConf is a kv daemon storing in dir.
func kvConf(dir, extra, regEnv string) string {
	return "command = " + filepath.Join(binDir, "kv") + " --dir " + dir + " --reindex-delay 300ms\n" +
		"port = 127.0.0.1:0\ntype = notify\n" +
		"min_servers = 2\nmax_servers = 4\nmin_spare_servers = 0\nmax_spare_servers = 2\n" + extra + regEnv
}

// queueConf is the built-in queue, on its default UNIX socket.
func queueConf(regEnv string) string {
	return "builtin = queue\ntype = notify\n" +
		"min_servers = 2\nmax_servers = 4\nmin_spare_servers = 0\nmax_spare_servers = 2\n" + regEnv
}

// kvEnv is a master running kv and the queue on a SQLite registry.
func kvEnv(t *testing.T) (*env, *master) {
	t.Helper()
	e := newEnv(t)
	e.setRegistry("[registry]\nheartbeat = 200ms\n")
	regEnv := registryEnv("sqlite", e.sqlite())
	e.write("kv.ini", kvConf(filepath.Join(e.dir, "var", "kv"), "", regEnv))
	e.write("queue.ini", queueConf(regEnv))
	m := e.start()
	e.waitCall("kv")
	return e, m
}

// waitCall waits until `nsfd call NAME` reaches the daemon.
func (e *env) waitCall(name string) {
	e.t.Helper()
	waitFor(e.t, name+" callable by name", 20*time.Second, func() bool {
		_, errOut, code := e.nsfd("call", name, "nosuchcommand")
		return code == 1 && strings.Contains(errOut, "2000 Unknown command")
	})
}

func TestCallKV(t *testing.T) {
	e, _ := kvEnv(t)
	call := func(args ...string) (string, string, int) {
		t.Helper()
		return e.nsfd(append([]string{"call", "kv"}, args...)...)
	}
	if out, errOut, code := call("put", `{"key":"a","value":"1"}`); code != 0 || out != "{\n  \"key\": \"a\"\n}\n" {
		t.Fatalf("put: %d %q %q", code, out, errOut)
	}
	// Each `nsfd call` is a new connection, which any of the two workers
	// takes: they share the store.
	for range 4 {
		if out, errOut, code := call("get", `{"key":"a"}`); code != 0 || out != "1\n" {
			t.Fatalf("get: %d %q %q", code, out, errOut)
		}
	}
	out, _, code := call("get", `{"key":"a"}`, "--json")
	var resp struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
		Meta    struct{ Transaction string }
	}
	if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Code != 1000 ||
		string(resp.Data) != `"1"` || resp.Meta.Transaction == "" {
		t.Fatalf("get --json: %d %q %v", code, out, err)
	}
	if out, errOut, code := call("del", `{"key":"a"}`); code != 0 || out != "" {
		t.Fatalf("del: %d %q %q", code, out, errOut)
	}
	// Error codes: exit 1, CODE MESSAGE on stderr.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", `{"key":"a"}`}, `nsfd: 2303 Object does not exist: key "a"`},
		{[]string{"put", `{"key":"a"}`}, "nsfd: 2003 Required parameter missing: value"},
		{[]string{"frobnicate"}, `nsfd: 2000 Unknown command: "frobnicate"`},
	} {
		out, errOut, code := call(c.args...)
		if code != 1 || out != "" || strings.TrimSpace(errOut) != c.want {
			t.Errorf("call kv %q: %d %q %q, want exit 1 and %q", c.args, code, out, errOut, c.want)
		}
	}
	// --json prints the error response too.
	if out, _, code := call("get", `{"key":"a"}`, "--json"); code != 1 || !strings.Contains(out, `"code": 2303`) {
		t.Errorf("get --json of a missing key: %d %q", code, out)
	}
	if _, errOut, code := e.nsfd("call", "nope", "get"); code != 1 || !strings.Contains(errOut, `"nope": not registered`) {
		t.Errorf("call nope: %d %q", code, errOut)
	}
	// kv serves 64 connections at once and never fills up here, so it never
	// reports BUSY=1: its workers count their connections (REQUESTS=n), and
	// status shows the 11 calls above.
	waitFor(t, "kv's calls counted in status", 10*time.Second, func() bool {
		d := e.status().daemon("kv")
		return d != nil && d.Requests >= 11
	})
	// Usage errors: exit 2.
	for _, args := range [][]string{{"call"}, {"call", "kv"}, {"call", "kv", "get", "{not json"}, {"call", "kv", "get", "{}", "extra"}} {
		if _, errOut, code := e.nsfd(args...); code != 2 || !strings.Contains(errOut, "usage") {
			t.Errorf("nsfd %q: %d %q, want a usage error", args, code, errOut)
		}
	}
}

func TestCallAsyncThroughQueue(t *testing.T) {
	e, _ := kvEnv(t)
	for i := range 3 {
		e.nsfd("call", "kv", "put", fmt.Sprintf(`{"key":"k%d","value":"%d"}`, i, i))
	}
	// Three values of 3 bytes ("0"): the result, through the queue.
	out, errOut, code := e.nsfd("call", "kv", "reindex", "--json")
	var resp wire.Response
	if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Code != 1000 {
		t.Fatalf("reindex: %d %q %q %v", code, out, errOut, err)
	}
	if compact(resp.Data) != `{"keys":3,"bytes":9}` {
		t.Fatalf("reindex result %s", resp.Data)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}@.+$`).MatchString(resp.Meta.Transaction) {
		t.Fatalf("transaction %q is not a job id", resp.Meta.Transaction)
	}
	if resp.Meta.Duration < 300*time.Millisecond {
		t.Fatalf("reindex took %v, less than its delay", resp.Meta.Duration)
	}

	// The queue has two workers and kv two: the wait and the result often
	// reach different queue processes, and a result still wakes its waiter
	// at once, not at the spool's safety re-read (queue.SpoolRecheck).
	// Timed with the client package, free of the CLI's start-up.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := registry.Open(ctx, registry.TypeSQLite, e.sqlite())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c := client.New(reg, client.Options{})
	defer c.Close()
	for range 4 {
		start := time.Now()
		resp, err := c.Call(ctx, "kv", &wire.Request{Command: "reindex", Data: json.RawMessage(`{"delay_ms":100}`)})
		took := time.Since(start)
		if err != nil || resp.Code != wire.CodeOK || compact(resp.Data) != `{"keys":3,"bytes":9}` {
			t.Fatalf("reindex: %+v %v", resp, err)
		}
		if took > queue.SpoolRecheck-time.Second {
			t.Fatalf("a 100ms reindex took %v: its result did not wake the waiter", took)
		}
	}
	// The jobs are in the spool, done; the queue lists them.
	out, _, code = e.nsfd("call", "queue", "list", `{"daemon":"kv","status":"done"}`)
	var jobs queue.Jobs
	if err := json.Unmarshal([]byte(out), &jobs); code != 0 || err != nil || len(jobs.Jobs) != 5 {
		t.Fatalf("queue list: %d %q %v", code, out, err)
	}
	if j := jobs.Jobs[0]; j.Status != "done" || !strings.Contains(compact(j.Request), `"command":"reindex"`) ||
		!strings.Contains(compact(j.Response), `"keys":3`) {
		t.Fatalf("job %+v", j)
	}
	if out, _, code := e.nsfd("call", "queue", "virgin"); code != 0 || !strings.Contains(out, `"jobs": []`) {
		t.Errorf("queue virgin: %d %q", code, out)
	}
}

// compact returns JSON text without its indentation.
func compact(b []byte) string {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}

// TestCallFailsOverToAnotherNode: two masters, nodes alpha and beta, share a
// registry and a kv store; a client on alpha calls kv, alpha's master is
// killed mid-run, and every call still succeeds, on beta.
func TestCallFailsOverToAnotherNode(t *testing.T) {
	shared := t.TempDir()
	dsn := filepath.Join(shared, "registry.db")
	store := filepath.Join(shared, "kv")
	regEnv := registryEnv("sqlite", dsn)
	nodes := map[string]*env{}
	masters := map[string]*master{}
	for _, node := range []string{"alpha", "beta"} {
		e := newEnv(t)
		e.write("nsfd.ini", "[nsfd]\nnode_name = "+node+"\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n"+
			"[registry]\ntype = sqlite\ndsn = "+dsn+"\nheartbeat = 1s\n")
		kv := kvConf(store, "", regEnv)
		if node == "alpha" {
			// alpha's kv on a port held for the test: once alpha is
			// killed, a freed port of its could be given to another test
			// process, whose server would answer or reset the calls that
			// must fail over (as in client's tests).
			kv = strings.Replace(kv, "127.0.0.1:0", testport.Reserve(t), 1)
		}
		e.write("kv.ini", kv)
		e.write("queue.ini", queueConf(regEnv))
		nodes[node], masters[node] = e, e.start()
	}
	for _, e := range nodes {
		e.waitCall("kv")
	}
	alpha := nodes["alpha"]
	waitFor(t, "both nodes' kv registered", 10*time.Second, func() bool {
		out, _, _ := alpha.nsfd("resolve", "kv")
		return strings.Count(out, "\n") == 2
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg, err := registry.Open(ctx, registry.TypeSQLite, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c := client.New(reg, client.Options{LocalNode: "alpha"})
	defer c.Close()
	info := func() string {
		resp, err := c.Call(ctx, "kv", &wire.Request{Command: "info"})
		if err != nil {
			t.Fatal(err)
		}
		var i struct{ Node string }
		resp.DecodeData(&i)
		return i.Node
	}
	if n := info(); n != "alpha" {
		t.Fatalf("a client on alpha is served by %q", n)
	}

	// Callers keep calling while alpha dies.
	const callers = 4
	var (
		calls, failures atomic.Int64
		lastFailure     atomic.Int64 // the number of the last failed call
		mu              sync.Mutex
		errs            []string
		stop            = make(chan struct{})
		wg              sync.WaitGroup
	)
	for g := range callers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf(`{"key":"g%d-%d","value":%d}`, g, i, i)
				req := &wire.Request{Command: "put", Data: json.RawMessage(key)}
				resp, err := c.Call(ctx, "kv", req)
				if err == nil {
					err = resp.Err()
				}
				n := calls.Add(1)
				if err != nil {
					failures.Add(1)
					lastFailure.Store(n)
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	waitFor(t, "calls before the kill", 10*time.Second, func() bool { return calls.Load() > 50 })
	a := masters["alpha"]
	pids := a.workers("")
	before := calls.Load()
	a.cmd.Process.Kill() // its workers die with it (parent-death signal), a moment later
	<-a.exited
	waitFor(t, "alpha's workers to die", 10*time.Second, func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
	dead := calls.Load()
	waitFor(t, "calls after the kill", 20*time.Second, func() bool { return calls.Load() > before+200 })
	close(stop)
	wg.Wait()
	// A call that alpha's worker was serving when it was killed fails: it
	// may have run, so it is not sent again. That is at most one per
	// caller; every other call, and every call after, goes to beta.
	if n := failures.Load(); n > callers {
		t.Fatalf("%d of %d calls failed across the kill, more than the %d in flight: %q", n, calls.Load(), callers, errs[:min(len(errs), 5)])
	}
	if lastFailure.Load() > dead+callers {
		t.Fatalf("call %d failed, after alpha was gone (call %d): %q", lastFailure.Load(), dead, errs)
	}
	if n := info(); n != "beta" {
		t.Fatalf("after alpha died, served by %q", n)
	}
	// The CLI on alpha's etc/ fails over too, and async calls go through
	// beta's queue.
	if out, errOut, code := alpha.nsfd("call", "kv", "get", `{"key":"g0-1"}`); code != 0 || out != "1\n" {
		t.Fatalf("nsfd call on alpha after its master died: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := alpha.nsfd("call", "kv", "reindex"); code != 0 || !strings.Contains(out, `"keys"`) {
		t.Fatalf("reindex after alpha died: %d %q %q", code, out, errOut)
	}
	t.Logf("%d calls across the kill of alpha, %d failed (in flight at the kill): %q", calls.Load(), failures.Load(), errs)
}

// readResponse reads one frame from c and decodes it; io.EOF or a reset when
// the server closed the connection instead.
func readResponse(c net.Conn) (*wire.Response, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := wire.ReadFrame(bufio.NewReader(c), nil, 0)
	if err != nil {
		return nil, err
	}
	codec, _ := wire.Lookup(wire.CodecJSON)
	resp := new(wire.Response)
	return resp, codec.Decode(frame, resp)
}

// closed reports whether err says the server closed the connection.
func closed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func TestKVSurvivesHostileInput(t *testing.T) {
	e, m := kvEnv(t)
	addr := m.addr("kv")
	workers := m.workers("kv")
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// After each attack a new client is served.
	served := func(what string) {
		t.Helper()
		key := strings.ReplaceAll(what, " ", "-")
		if _, errOut, code := e.nsfd("call", "kv", "put", `{"key":"`+key+`","value":true}`); code != 0 {
			t.Fatalf("after %s: put: %q", what, errOut)
		}
		if out, _, code := e.nsfd("call", "kv", "get", `{"key":"`+key+`"}`); code != 0 || out != "true\n" {
			t.Fatalf("after %s: get: %d %q", what, code, out)
		}
	}

	t.Run("16 KiB of random bytes", func(t *testing.T) {
		junk := make([]byte, 16<<10)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		c := dial()
		if _, err := c.Write(junk); err != nil && !closed(err) {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		resp, err := readResponse(c)
		switch {
		case err == nil && resp.Code == wire.CodeFailedClosing:
			// a length over the limit: refused, then closed
			if _, err := readResponse(c); !closed(err) {
				t.Fatalf("after 2500: %v", err)
			}
		case err != nil && closed(err):
			// a length within the limit, then the end: a truncated frame
		default:
			t.Fatalf("random bytes: %+v %v", resp, err)
		}
		served("random bytes")
	})

	t.Run("4 GiB length prefix", func(t *testing.T) {
		c := dial()
		if _, err := c.Write([]byte{0xff, 0xff, 0xff, 0xff, '{'}); err != nil {
			t.Fatal(err)
		}
		resp, err := readResponse(c)
		if err != nil || resp.Code != wire.CodeFailedClosing || !strings.Contains(resp.Message, "frame too large") {
			t.Fatalf("4 GiB prefix: %+v %v", resp, err)
		}
		if _, err := readResponse(c); !closed(err) {
			t.Fatalf("connection not closed after 2500: %v", err)
		}
		served("4 GiB prefix")
	})

	t.Run("truncated frame", func(t *testing.T) {
		c := dial()
		frame := binary.BigEndian.AppendUint32(nil, 100)
		frame = append(frame, `{"command":`...)
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		if resp, err := readResponse(c); !closed(err) {
			t.Fatalf("truncated frame: %+v %v, want the connection closed", resp, err)
		}
		served("truncated frame")
	})

	t.Run("unknown command and garbage JSON", func(t *testing.T) {
		c := dial()
		conn := wire.NewConn(c, nil, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := conn.Call(ctx, &wire.Request{Command: "drop tables"})
		if err != nil || resp.Code != wire.CodeUnknownCommand {
			t.Fatalf("unknown command: %+v %v", resp, err)
		}
		// A frame whose payload is not JSON: 2001, and the connection
		// still serves.
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, 5), "hello"...)); err != nil {
			t.Fatal(err)
		}
		if resp, err := readResponse(c); err != nil || resp.Code != wire.CodeSyntaxError {
			t.Fatalf("garbage payload: %+v %v", resp, err)
		}
		req, _ := wire.NewRequest("put", map[string]string{"key": "same-conn", "value": `"x"`})
		if resp, err := conn.Call(ctx, req); err != nil || resp.Code != wire.CodeOK {
			t.Fatalf("the same connection after errors: %+v %v", resp, err)
		}
		served("unknown command")
	})

	// No worker died on the way.
	if now := m.workers("kv"); fmt.Sprint(now) != fmt.Sprint(workers) {
		t.Fatalf("kv workers %v became %v", workers, now)
	}
}
