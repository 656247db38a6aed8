package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/supervisor"
	"github.com/nsfd/nsfd/wire"
)

// fakeAPI answers the control API's routes the page uses, and records the
// actions it was asked for with who asked.
type fakeAPI struct {
	mu      sync.Mutex
	actions []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := supervisor.Status{Node: "n1", PID: 42, Version: "test", Daemons: []supervisor.DaemonStatus{{
		Name: "echo", State: "running", Listeners: []string{"tcp 127.0.0.1:7001"}, Requests: 10,
		Workers:   []prefork.WorkerStatus{{PID: 100, State: "busy", Resources: &prefork.GroupStats{MemoryBytes: 3 << 20}}, {PID: 101, State: "idle"}},
		Resources: &prefork.GroupStats{CPUSeconds: 1.5, MemoryBytes: 6 << 20, MemoryPeak: 8 << 20, Procs: 2},
	}, {
		Name: "broken", State: "fatal", ConfigError: "command: <script>alert(1)</script> not found",
	}, {
		Name: "app", State: "waiting", Reason: "waiting for db: fatal",
	}, {
		Name: "full", State: "running", Saturated: true,
	}}}
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/status":
		if n := r.URL.Query().Get("name"); n != "" {
			var keep []supervisor.DaemonStatus
			for _, d := range st.Daemons {
				if d.Name == n {
					keep = append(keep, d)
				}
			}
			if keep == nil {
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"error": "no such daemon"}`)
				return
			}
			st.Daemons = keep
		}
		json.NewEncoder(w).Encode(st)
	case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/config"):
		json.NewEncoder(w).Encode([]supervisor.ConfigItem{{Key: "env.DB_PASSWORD", Value: supervisor.Masked}})
	case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/v1/daemons/"):
		f.mu.Lock()
		f.actions = append(f.actions, r.URL.RequestURI()+" by "+supervisor.ActorOf(r.Context()))
		f.mu.Unlock()
		fmt.Fprint(w, `{}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error": "no route"}`)
	}
}

func (f *fakeAPI) done() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

// usersFile writes a tokens file: ann may do everything, viv only view.
func usersFile(t *testing.T) *wire.Tokens {
	t.Helper()
	var b strings.Builder
	for _, u := range []struct{ name, pass, cmds string }{{"ann", "ann-pw", ""}, {"viv", "viv-pw", ":view"}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u.pass), bcrypt.MinCost) // the tests' speed, not a user's
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s%s\n", u.name, h, u.cmds)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := wire.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serve starts the page over api on a test server.
func serve(t *testing.T, o Options, api http.Handler, remote bool) *httptest.Server {
	srv, _ := servePage(t, o, api, remote)
	return srv
}

func servePage(t *testing.T, o Options, api http.Handler, remote bool) (*httptest.Server, *Page) {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler(api, remote))
	t.Cleanup(srv.Close)
	return srv, p
}

func get(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

func post(t *testing.T, target, user, pass string, form url.Values, hdr map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestOverviewShowsTheAPIsStatus(t *testing.T) {
	srv := serve(t, Options{}, &fakeAPI{}, false)
	code, body := get(t, srv.URL+"/ui/", "", "")
	if code != 200 {
		t.Fatalf("overview: %d %s", code, body)
	}
	for _, want := range []string{`href="/ui/daemons/echo"`, "1 / 1 / 2", "tcp 127.0.0.1:7001", "state-fatal",
		"command: &lt;script&gt;alert(1)&lt;/script&gt; not found", "1.5s", "6.0 MiB", "waiting for db: fatal", "saturated: every worker busy"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q:\n%s", want, body)
		}
	}
	// The refresh gets the table alone.
	_, part := get(t, srv.URL+"/ui/?part=live", "", "")
	if strings.Contains(part, "<html") || !strings.Contains(part, `href="/ui/daemons/echo"`) {
		t.Errorf("refresh fragment:\n%s", part)
	}
	// A daemon's page, its secrets masked.
	_, body = get(t, srv.URL+"/ui/daemons/echo", "", "")
	if !strings.Contains(body, "env.DB_PASSWORD") || !strings.Contains(body, supervisor.Masked) || !strings.Contains(body, "3.0 MiB") || !strings.Contains(body, "peak 8.0 MiB") {
		t.Errorf("daemon page:\n%s", body)
	}
	if code, _ := get(t, srv.URL+"/ui/daemons/nope", "", ""); code != 404 {
		t.Errorf("unknown daemon: %d", code)
	}
	if code, _ := get(t, srv.URL+"/ui/fleet", "", ""); code != 404 {
		t.Errorf("fleet without one: %d", code)
	}
}

func TestRemoteNeedsAuthentication(t *testing.T) {
	srv := serve(t, Options{Users: usersFile(t)}, &fakeAPI{}, true)
	for _, c := range []struct{ user, pass string }{{"", ""}, {"ann", "wrong"}, {"nobody", "x"}} {
		if code, _ := get(t, srv.URL+"/ui/", c.user, c.pass); code != http.StatusUnauthorized {
			t.Errorf("%q/%q: %d, want 401", c.user, c.pass, code)
		}
	}
	if code, _ := get(t, srv.URL+"/ui/", "ann", "ann-pw"); code != 200 {
		t.Errorf("ann: %d", code)
	}
	if code, _ := get(t, srv.URL+"/ui/", "viv", "viv-pw"); code != 200 {
		t.Errorf("viv (view only) reading: %d", code)
	}
}

func TestActionsNeedTheirToken(t *testing.T) {
	api := &fakeAPI{}
	srv, p := servePage(t, Options{Users: usersFile(t)}, api, true)
	_, page := get(t, srv.URL+"/ui/daemons/echo", "ann", "ann-pw")
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token in the page:\n%s", page)
	}
	tok := m[1]
	restart := srv.URL + "/ui/daemons/echo/restart"
	for name, c := range map[string]struct {
		user, pass string
		form       url.Values
		hdr        map[string]string
		want       int
	}{
		"no token":        {"ann", "ann-pw", nil, nil, 403},
		"wrong token":     {"ann", "ann-pw", url.Values{"token": {"x" + tok}}, nil, 403},
		"another's token": {"viv", "viv-pw", url.Values{"token": {tok}}, nil, 403},
		"cross-site":      {"ann", "ann-pw", url.Values{"token": {tok}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		"other origin":    {"ann", "ann-pw", url.Values{"token": {tok}}, map[string]string{"Origin": "https://evil.example"}, 403},
		"no auth":         {"", "", url.Values{"token": {tok}}, nil, 401},
	} {
		if got := post(t, restart, c.user, c.pass, c.form, c.hdr); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
	if a := api.done(); len(a) != 0 {
		t.Fatalf("refused posts reached the API: %q", a)
	}
	// A view-only user with their own token is still refused.
	_, vpage := get(t, srv.URL+"/ui/daemons/echo", "viv", "viv-pw")
	if strings.Contains(vpage, "/restart") {
		t.Errorf("a view-only user is shown the actions")
	}
	if got := post(t, restart, "viv", "viv-pw", url.Values{"token": {viewerToken(p, "viv")}}, nil); got != 403 {
		t.Errorf("view-only user's restart: %d", got)
	}
	// The real thing.
	if got := post(t, restart, "ann", "ann-pw", url.Values{"token": {tok}}, map[string]string{"Sec-Fetch-Site": "same-origin"}); got != http.StatusSeeOther {
		t.Fatalf("restart: %d", got)
	}
	if got := post(t, srv.URL+"/ui/daemons/echo/scale", "ann", "ann-pw", url.Values{"token": {tok}, "n": {"+2"}}, nil); got != http.StatusSeeOther {
		t.Fatalf("scale: %d", got)
	}
	if got := post(t, srv.URL+"/ui/daemons/echo/reload", "ann", "ann-pw", url.Values{"token": {tok}}, nil); got != 404 {
		t.Fatalf("unknown action: %d", got)
	}
	a := api.done()
	if len(a) != 2 || a[0] != "/v1/daemons/echo/restart by web:ann" || a[1] != "/v1/daemons/echo/scale?n=%2B2 by web:ann" {
		t.Fatalf("actions: %q", a)
	}
}

// viewerToken is the token p gives user on http_addr (a view-only user
// sees no form to take it from).
func viewerToken(p *Page, user string) string {
	r := httptest.NewRequest("GET", "/ui/", nil)
	return p.token(r.WithContext(context.WithValue(r.Context(), viewerKey{}, viewer{user: user, remote: true})))
}

func TestRates(t *testing.T) {
	var r rates
	t0 := time.Unix(1000, 0)
	if got := r.rate("a", 0, t0); got != -1 {
		t.Fatalf("first sample: %v", got)
	}
	if got := r.rate("a", 50, t0.Add(500*time.Millisecond)); got != -1 {
		t.Fatalf("within the window: %v", got)
	}
	if got := r.rate("a", 100, t0.Add(time.Second)); got != 100 {
		t.Fatalf("after a second: %v", got)
	}
	if got := r.rate("a", 5, t0.Add(3*time.Second)); got != -1 {
		t.Fatalf("counter went back (restart): %v", got)
	}
}

func TestFollowStreamsNewLines(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "nsfd.log")
	if err := os.WriteFile(logFile, []byte("2026-12-03T07:00:00.000Z echo[1] stdout: old line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, Options{LogFile: logFile}, &fakeAPI{}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/ui/daemons/echo/log", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	var head []string
	for len(head) < 6 {
		l, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		head = append(head, l)
	}
	// A reset, then the last lines, then the new ones.
	if got := strings.Join(head, ""); got != ": following\n\nevent: reset\ndata:\n\ndata: 2026-12-03T07:00:00.000Z echo[1] stdout: old line\n" {
		t.Fatalf("stream starts %q", got)
	}
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "2026-12-03T07:00:01.000Z other[2] stdout: not echo\n2026-12-03T07:00:01.000Z echo[1] stdout: new \x1b[31mline\n")
	f.Close()
	for {
		l, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if strings.HasPrefix(l, "data: ") {
			if strings.Contains(l, "not echo") || !strings.Contains(l, `new \x1b[31mline`) {
				t.Fatalf("event %q", l)
			}
			return
		}
	}
}
