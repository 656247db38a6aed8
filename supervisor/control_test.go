package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The control API on fake pools: every route, the errors mapped to HTTP
// codes, and the caller checks through the peer credentials the control
// socket puts in each request's context.

// answer is one answer of the control API.
type answer struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends a request from a caller with uid and gid to h.
func call(t *testing.T, h http.Handler, method, target string, uid, gid uint32) answer {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req = req.WithContext(context.WithValue(req.Context(), credsKey{}, &peerCred{Uid: uid, Gid: gid}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{code: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if !strings.HasPrefix(target, "/metrics") {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("%s %s: %d, not a JSON object: %v\n%s", method, target, rec.Code, err, rec.Body)
		}
	}
	return a
}

// asRoot sends a request as root.
func asRoot(t *testing.T, h http.Handler, method, target string) answer {
	t.Helper()
	return call(t, h, method, target, 0, 0)
}

// wantCode fails the test unless a has code; an error answer must say why.
func wantCode(t *testing.T, what string, a answer, code int, errPart string) {
	t.Helper()
	if a.code != code {
		t.Fatalf("%s: %d %s; want %d", what, a.code, a.raw, code)
	}
	msg, _ := a.body["error"].(string)
	if code != http.StatusOK && (msg == "" || !strings.Contains(msg, errPart)) {
		t.Errorf("%s: error %q; want one that says %q", what, msg, errPart)
	}
}

func twoDaemons(t *testing.T) *testMaster {
	t.Helper()
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.write("b.ini", tm.daemonFile("b.sock"))
	tm.reload()
	return tm
}

func TestControlStatus(t *testing.T) {
	tm := twoDaemons(t)
	h := tm.controlHandler(tm.apiHandler(), -1)

	a := asRoot(t, h, "GET", "/v1/status")
	wantCode(t, "status", a, http.StatusOK, "")
	var st Status
	if err := json.Unmarshal([]byte(a.raw), &st); err != nil {
		t.Fatal(err)
	}
	if st.Etc != tm.etc || st.PID != os.Getpid() || len(st.Daemons) != 2 || st.Daemons[0].Name != "a" || st.Daemons[1].Name != "b" {
		t.Fatalf("status: %+v; want a and b of this master", st)
	}
	if d := st.Daemons[0]; d.State != "running" || len(d.Workers) != 1 || d.Workers[0].State != "idle" || len(d.Listeners) != 1 {
		t.Errorf("a: %+v; want running, its fake pool's worker, one listener", d)
	}

	a = asRoot(t, h, "GET", "/v1/status?name=b")
	wantCode(t, "status of b", a, http.StatusOK, "")
	if ds, _ := a.body["daemons"].([]any); len(ds) != 1 || ds[0].(map[string]any)["name"] != "b" {
		t.Errorf("status of b: %s", a.raw)
	}
	wantCode(t, "status of an unknown daemon", asRoot(t, h, "GET", "/v1/status?name=zz"), http.StatusNotFound, "no such daemon")
}

func TestControlReload(t *testing.T) {
	tm := twoDaemons(t)
	h := tm.controlHandler(tm.apiHandler(), -1)
	tm.write("c.ini", tm.daemonFile("c.sock"))
	tm.remove("a.ini")
	a := asRoot(t, h, "POST", "/v1/reload")
	wantCode(t, "reload", a, http.StatusOK, "")
	var r ReloadResult
	if err := json.Unmarshal([]byte(a.raw), &r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Added, []string{"c"}) || !slices.Equal(r.Removed, []string{"a"}) {
		t.Errorf("reload: %+v; want c added, a removed", r)
	}
}

// TestControlDaemonVerbs: start, stop, restart and scale reach the daemon's
// pool, and each error has its code: 404 no such daemon or verb, 409 a
// stopped daemon, 400 a bad scale, 500 a pool that fails.
func TestControlDaemonVerbs(t *testing.T) {
	tm := twoDaemons(t)
	h := tm.controlHandler(tm.apiHandler(), -1)

	wantCode(t, "restart a", asRoot(t, h, "POST", "/v1/daemons/a/restart"), http.StatusOK, "")
	if got := tm.pools.pool(t, "a").Calls(); !slices.Equal(got, []string{"start", "restart"}) {
		t.Errorf("a's pool was asked %v; want start, restart", got)
	}
	tm.pools.pool(t, "b").restartErr = errors.New("roll refused")
	wantCode(t, "restart b, its pool failing", asRoot(t, h, "POST", "/v1/daemons/b/restart"), http.StatusInternalServerError, "roll refused")

	a := asRoot(t, h, "POST", "/v1/daemons/a/scale?n=%2B2")
	wantCode(t, "scale a +2", a, http.StatusOK, "")
	if p, _ := a.body["policy"].(map[string]any); p["min_servers"] != 3.0 || p["max_servers"] != 4.0 {
		t.Errorf("scale +2: %s; want min_servers 3, max_servers 4", a.raw)
	}
	if d := tm.daemon("a"); d.Policy.MinServers != 3 {
		t.Errorf("a's policy after scale: %+v", d.Policy)
	}
	wantCode(t, "scale with a bad amount", asRoot(t, h, "POST", "/v1/daemons/a/scale?n=x"), http.StatusBadRequest, "bad scale")
	wantCode(t, "scale past the limit", asRoot(t, h, "POST", "/v1/daemons/a/scale?n=%2B10000"), http.StatusBadRequest, "bad scale")

	wantCode(t, "stop a", asRoot(t, h, "POST", "/v1/daemons/a/stop"), http.StatusOK, "")
	if d := tm.daemon("a"); d.State != "stopped" {
		t.Errorf("a is %s after stop", d.State)
	}
	wantCode(t, "stop a again", asRoot(t, h, "POST", "/v1/daemons/a/stop"), http.StatusOK, "")
	wantCode(t, "scale a stopped daemon", asRoot(t, h, "POST", "/v1/daemons/a/scale?n=1"), http.StatusConflict, "daemon is stopped")
	wantCode(t, "start a", asRoot(t, h, "POST", "/v1/daemons/a/start"), http.StatusOK, "")
	if d := tm.daemon("a"); d.State != "running" {
		t.Errorf("a is %s after start", d.State)
	}
	wantCode(t, "start a running daemon", asRoot(t, h, "POST", "/v1/daemons/a/start"), http.StatusOK, "")
	if got := tm.pools.madeOrder(); !slices.Equal(got, []string{"a", "b", "a"}) {
		t.Errorf("pools made %v; want a second one for a only", got)
	}

	for _, verb := range []string{"start", "stop", "restart", "scale?n=1"} {
		wantCode(t, verb+" of an unknown daemon", asRoot(t, h, "POST", "/v1/daemons/zz/"+verb), http.StatusNotFound, "no such daemon")
	}
	wantCode(t, "an unknown verb", asRoot(t, h, "POST", "/v1/daemons/a/frobnicate"), http.StatusNotFound, "unknown verb")
}

func TestControlRoutesAndMethods(t *testing.T) {
	tm := twoDaemons(t)
	h := tm.controlHandler(tm.apiHandler(), -1)
	a := asRoot(t, h, "GET", "/metrics")
	if a.code != http.StatusOK || !strings.Contains(a.raw, "nsfd_reloads_total 2") || !strings.Contains(a.raw, `nsfd_daemon_up{daemon="a",state="running"} 1`) {
		t.Errorf("metrics: %d\n%s", a.code, a.raw)
	}
	a = asRoot(t, h, "GET", "/v1/reload")
	wantCode(t, "GET /v1/reload", a, http.StatusMethodNotAllowed, "method not allowed")
	if a.header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	wantCode(t, "an unknown path", asRoot(t, h, "GET", "/v2/status"), http.StatusNotFound, "not found")
}

// TestControlChecksTheCaller: root, the master's own uid and members of
// control_group may call; anyone else, or a caller without credentials,
// gets 403 on every route and changes nothing.
func TestControlChecksTheCaller(t *testing.T) {
	tm := twoDaemons(t)
	const group = 4242
	h := tm.controlHandler(tm.apiHandler(), group)
	stranger := uint32(54321)
	if uint32(os.Geteuid()) == stranger {
		t.Skip("running as the stranger's uid")
	}
	for _, r := range []struct{ method, target string }{
		{"GET", "/v1/status"}, {"POST", "/v1/reload"}, {"GET", "/metrics"},
		{"POST", "/v1/daemons/a/start"}, {"POST", "/v1/daemons/a/stop"}, {"POST", "/v1/daemons/a/restart"}, {"POST", "/v1/daemons/a/scale?n=1"},
		{"GET", "/nowhere"},
	} {
		a := call(t, h, r.method, r.target, stranger, stranger)
		if a.code != http.StatusForbidden || !strings.Contains(a.raw, "uid 54321 may not control this master") {
			t.Errorf("%s %s from uid %d: %d %s; want 403", r.method, r.target, stranger, a.code, a.raw)
		}
	}
	if got := tm.pools.pool(t, "a").Calls(); !slices.Equal(got, []string{"start"}) {
		t.Errorf("refused calls reached a's pool: %v", got)
	}
	wantCode(t, "a member of control_group", call(t, h, "GET", "/v1/status", stranger, group), http.StatusOK, "")
	wantCode(t, "the master's own uid", call(t, h, "GET", "/v1/status", uint32(os.Geteuid()), uint32(os.Getegid())), http.StatusOK, "")
	wantCode(t, "root", call(t, h, "GET", "/v1/status", 0, 0), http.StatusOK, "")

	req := httptest.NewRequest("GET", "/v1/status", nil) // no credentials
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "unknown may not control") {
		t.Errorf("a caller without credentials: %d %s", rec.Code, rec.Body)
	}
}

// TestControlAPIHasOnlyItsVerbs pins the control API's verbs
// (docs/security.md): none runs a command the caller names or writes a
// file; upgrade, which executes a binary, is for root and the master's own
// user only, and only to a binary no other user can change.
func TestControlAPIHasOnlyItsVerbs(t *testing.T) {
	tm := twoDaemons(t)
	h := tm.controlHandler(tm.apiHandler(), -1)
	for _, probe := range []string{
		"POST /v1/exec", "POST /v1/run", "POST /v1/daemons/a/exec", "POST /v1/daemons/a/run",
		"POST /v1/daemons/a/config", "PUT /v1/daemons/a", "DELETE /v1/daemons/a", "POST /v1/files",
		"PUT /v1/files/etc/a.ini", "POST /v1/daemons/a/command", "GET /v1/upgrade", "POST /v1/shell",
	} {
		method, path, _ := strings.Cut(probe, " ")
		if a := asRoot(t, h, method, path); a.code != http.StatusNotFound && a.code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d %s; want no such verb", probe, a.code, a.raw)
		}
	}
	// A member of control_group (neither root nor the master's user) may
	// not upgrade.
	const group = 4243
	member := uint32(os.Geteuid()) + 4242
	hg := tm.controlHandler(tm.apiHandler(), group)
	wantCode(t, "status by a member of control_group", call(t, hg, "GET", "/v1/status", member, group), http.StatusOK, "")
	wantCode(t, "upgrade by a member of control_group", call(t, hg, "POST", "/v1/upgrade", member, group), http.StatusForbidden, "only root")
	// Nor may root name a binary another user can change.
	bin := filepath.Join(t.TempDir(), "nsfd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(bin, 0o777)
	a := asRoot(t, h, "POST", "/v1/upgrade?binary="+bin)
	if a.code == http.StatusOK || a.code == http.StatusForbidden {
		t.Fatalf("upgrade to a world-writable binary: %d %s", a.code, a.raw)
	}
	if msg, _ := a.body["error"].(string); !strings.Contains(msg, "writ") {
		t.Errorf("upgrade to a world-writable binary refused with %q; want why", msg)
	}
}
