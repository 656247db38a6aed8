package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/pgtest"
	"github.com/nsfd/nsfd/wire"
	"github.com/nsfd/nsfd/worker"
)

var pg = pgtest.Shared()

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

var engines = []struct {
	typ string
	dsn func(tb testing.TB) string
}{
	{registry.TypeSQLite, func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "registry.db") }},
	{registry.TypePostgres, func(tb testing.TB) string { return pg.Get(tb).NewDatabase(tb) }},
}

// serve serves a queue Handler on the spool of a new registry of typ and
// returns a function that dials it.
func serve(t *testing.T, typ, dsn string, o Options) func() *wire.Conn {
	t.Helper()
	reg, err := registry.Open(context.Background(), typ, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	sp, err := SpoolOf(reg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wire.Serve(ctx, l, NewHandler(sp, o)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return func() *wire.Conn {
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := wire.NewConn(nc, nil, 0)
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// do sends command with data (a JSON text) and returns the response.
func do(t *testing.T, c *wire.Conn, command, data string) *wire.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := &wire.Request{Command: command, User: "ann"}
	if data != "" {
		req.Data = json.RawMessage(data)
	}
	resp, err := c.Call(ctx, req)
	if err != nil {
		t.Fatalf("%s %s: %v", command, data, err)
	}
	return resp
}

// job decodes a response's Job, failing unless its code is want.
func job(t *testing.T, resp *wire.Response, want int) Job {
	t.Helper()
	if resp.Code != want {
		t.Fatalf("code %d %s, want %d", resp.Code, resp.Message, want)
	}
	var j Job
	if err := resp.DecodeData(&j); err != nil {
		t.Fatal(err)
	}
	return j
}

var jobID = regexp.MustCompile(`^[0-9a-f]{32}@alpha$`)

func TestVerbs(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			c := serve(t, e.typ, e.dsn(t), Options{Node: "alpha"})()
			put := job(t, do(t, c, "put", `{"daemon":"kv","request":{"command":"reindex","user":"ann","pass":"secret","data":{"n":1}}}`), wire.CodeOK)
			if !jobID.MatchString(put.ID) || put.Status != JobVirgin || put.Daemon != "kv" {
				t.Fatalf("put: %+v", put)
			}
			if strings.Contains(string(put.Request), "secret") || !strings.Contains(string(put.Request), `"data":{"n":1}`) {
				t.Fatalf("stored request %s", put.Request)
			}
			other := job(t, do(t, c, "put", `{"daemon":"mail"}`), wire.CodeOK)
			if other.ID == put.ID {
				t.Fatal("two jobs, one id")
			}

			id := `{"id":"` + put.ID + `"}`
			if got := job(t, do(t, c, "get", id), wire.CodeOK); got.ID != put.ID || got.Status != JobVirgin {
				t.Fatalf("get: %+v", got)
			}
			virgin := do(t, c, "virgin", `{"daemon":"kv"}`)
			var js Jobs
			if err := virgin.DecodeData(&js); err != nil || len(js.Jobs) != 1 || js.Jobs[0].ID != put.ID {
				t.Fatalf("virgin: %s %v", virgin.Data, err)
			}
			if got := job(t, do(t, c, "mod", `{"id":"`+put.ID+`","status":"working"}`), wire.CodeOK); got.Status != JobWorking {
				t.Fatalf("mod working: %+v", got)
			}
			// A result without a status: done, or failed for an error code.
			done := job(t, do(t, c, "mod", `{"id":"`+put.ID+`","response":{"code":1000,"message":"ok","data":{"keys":3}}}`), wire.CodeOK)
			if done.Status != JobDone || !strings.Contains(string(done.Response), `"keys":3`) {
				t.Fatalf("mod result: %+v", done)
			}
			failed := job(t, do(t, c, "mod", `{"id":"`+other.ID+`","response":{"code":2400,"message":"Command failed"}}`), wire.CodeOK)
			if failed.Status != JobFailed {
				t.Fatalf("mod error result: %+v", failed)
			}
			for status, want := range map[string][]string{"": {put.ID, other.ID}, "done": {put.ID}, "virgin": {}} {
				resp := do(t, c, "list", `{"status":"`+status+`"}`)
				var js Jobs
				if err := resp.DecodeData(&js); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, j := range js.Jobs {
					got = append(got, j.ID)
				}
				// Jobs come oldest first; two put in the same millisecond tie, so compare as sets.
				slices.Sort(got)
				want = slices.Sorted(slices.Values(want))
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("list %q = %v, want %v", status, got, want)
				}
			}
			// wait on a finished job answers at once.
			if got := job(t, do(t, c, "wait", id), wire.CodeOK); got.Status != JobDone {
				t.Fatalf("wait: %+v", got)
			}
			if resp := do(t, c, "del", id); resp.Code != wire.CodeOK {
				t.Fatalf("del: %d %s", resp.Code, resp.Message)
			}

			// Errors, each with its code; the connection serves on.
			for _, c2 := range []struct {
				command, data string
				code          int
			}{
				{"get", id, wire.CodeNotExist},
				{"del", id, wire.CodeNotExist},
				{"mod", `{"id":"` + put.ID + `","status":"done"}`, wire.CodeNotExist},
				{"wait", id, wire.CodeNotExist},
				{"get", `{}`, wire.CodeMissingParam},
				{"put", `{}`, wire.CodeMissingParam},
				{"put", `{"daemon":"kv","request":[1]}`, wire.CodeValueSyntax},
				{"mod", `{"id":"x"}`, wire.CodeMissingParam},
				{"mod", `{"id":"` + other.ID + `","status":"archived"}`, wire.CodeValueRange},
				{"mod", `{"id":"` + other.ID + `","response":"nope"}`, wire.CodeValueSyntax},
				{"get", `[1,2]`, wire.CodeSyntaxError},
				{"archive", `{}`, wire.CodeUnknownCommand},
			} {
				if resp := do(t, c, c2.command, c2.data); resp.Code != c2.code {
					t.Errorf("%s %s: %d %s, want %d", c2.command, c2.data, resp.Code, resp.Message, c2.code)
				}
			}
		})
	}
}

func TestWaitIsWokenAndTimesOut(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			dsn := e.dsn(t)
			c := serve(t, e.typ, dsn, Options{Node: "alpha", MaxWait: 300 * time.Millisecond})()
			put := job(t, do(t, c, "put", `{"daemon":"kv"}`), wire.CodeOK)
			// Past MaxWait the queue answers 1001 with the job as it is.
			start := time.Now()
			pending := job(t, do(t, c, "wait", `{"id":"`+put.ID+`","timeout_ms":60000}`), wire.CodePending)
			if pending.ID != put.ID || pending.Status != JobVirgin {
				t.Fatalf("wait past MaxWait: %+v", pending)
			}
			if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
				t.Fatalf("wait held %v, want MaxWait (300ms)", d)
			}

			// A result stored through another queue worker (another
			// registry handle: no in-process wake-up) wakes a waiter,
			// sooner than the spool's safety re-read would find it.
			other := serve(t, e.typ, dsn, Options{Node: "alpha"})()
			type result struct {
				resp *wire.Response
				at   time.Time
			}
			got := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				resp, err := other.Call(ctx, &wire.Request{Command: "wait", Data: json.RawMessage(`{"id":"` + put.ID + `"}`)})
				if err != nil {
					resp = wire.Fail(err)
				}
				got <- result{resp, time.Now()}
			}()
			stored := time.Now()
			job(t, do(t, c, "mod", `{"id":"`+put.ID+`","response":{"code":1000,"data":"fine"}}`), wire.CodeOK)
			r := <-got
			if j := job(t, r.resp, wire.CodeOK); j.Status != JobDone {
				t.Fatalf("woken wait: %+v", j)
			}
			if d := r.at.Sub(stored); d > SpoolRecheck/2 {
				t.Fatalf("waiter answered %v after the result landed", d)
			}
		})
	}
}

func TestRunNeedsARegistry(t *testing.T) {
	t.Setenv(worker.EnvRegistryDSN, "")
	err := Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), worker.EnvRegistryDSN) {
		t.Fatalf("Run without a registry: %v", err)
	}
	if err := Run(context.Background(), []string{"--registry-dsn", "/x", "--encoding", "xml"}); err == nil {
		t.Fatal("Run with an unknown encoding: no error")
	}
}
