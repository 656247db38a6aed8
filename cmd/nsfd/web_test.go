//go:build linux

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/nsfd/nsfd/internal/testport"
)

// browser starts a headless Chromium (Debian's chromium, which make setup
// installs) whose every request carries basic authentication as user.
func browser(t *testing.T, user, pass string) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium to test the web page in (make setup installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root on the test machine
		chromedp.DisableGPU,
		chromedp.WindowSize(1100, 700),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	// The first call starts the browser, for as long as ctx lives (no
	// timeout on it: that would end the browser).
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// webEnv is a master with the web page on http_addr, users in http_users,
// and one echo daemon.
func webEnv(t *testing.T) (*env, *master, string) {
	t.Helper()
	e := newEnv(t)
	h, err := bcrypt.GenerateFromPassword([]byte("ann-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e.write("users", "ann:"+string(h)+"\n")
	os.Chmod(filepath.Join(e.etc, "users"), 0o600)
	addr := testport.Reserve(t) // no other process can take it before the master binds it
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\nhttp_addr = "+addr+"\nhttp_users = users\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	e.write("echo.ini", echoConf("min_servers = 2\nmax_servers = 4\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_requests = 0\n"))
	m := e.start()
	m.addr("echo")
	e.waitReady()
	waitFor(t, "2 echo workers", 15*time.Second, func() bool { return len(e.pids("echo")) == 2 })
	return e, m, "http://" + addr
}

// TestWebPageInBrowser drives the page in a real Chromium: the overview
// lists the running daemons; a restart from the daemon's page rolls its
// workers with no request failing; the lines the new workers print appear
// on the page within a second of reaching the central log.
func TestWebPageInBrowser(t *testing.T) {
	e, m, base := webEnv(t)
	ctx := browser(t, "ann", "ann-pw")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-daemon="echo"]`)),
	); err != nil {
		t.Fatalf("overview: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`table.daemons`)))
	if err != nil {
		t.Fatalf("overview: %v", err)
	}
	if !strings.Contains(rows, "echo") || !strings.Contains(rows, "running") || !strings.Contains(rows, "/ 2") {
		t.Fatalf("overview rows: %q", rows)
	}
	screenshot(t, ctx, "ui-overview.png")

	// Restart from the daemon's page, under load.
	old := e.pids("echo")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/ui/daemons/echo"]`)),
		chromedp.WaitVisible(chromedp.CSS(`pre#log`)),
	); err != nil {
		t.Fatalf("daemon page: %v", err)
	}
	screenshot(t, ctx, "ui-daemon.png")
	l := startLoad(m.addr("echo"), 2)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/ui/daemons/echo/restart"] button`))); err != nil {
		t.Fatalf("restart: %v", err)
	}
	var fresh []int
	waitFor(t, "every worker replaced", 20*time.Second, func() bool {
		fresh = fresh[:0]
		for pid := range e.pids("echo") {
			if old[pid] {
				return false
			}
			fresh = append(fresh, pid)
		}
		return len(fresh) > 0
	})
	l.finish(t)
	if !strings.Contains(e.log(), "control: restart: daemon=echo by=web:ann") {
		t.Errorf("the restart is not logged with who did it")
	}

	// Each new worker's "ready" line: when it reached the log file, and
	// when the page (following through server-sent events) showed it.
	for _, pid := range fresh {
		line := fmt.Sprintf("echo worker %d ready", pid)
		inFile, onPage := time.Time{}, time.Time{}
		deadline := time.Now().Add(10 * time.Second)
		for (inFile.IsZero() || onPage.IsZero()) && time.Now().Before(deadline) {
			now := time.Now()
			if inFile.IsZero() && strings.Contains(e.log(), line) {
				inFile = now
			}
			text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`pre#log`)))
			if err != nil {
				t.Fatal(err)
			}
			if onPage.IsZero() && strings.Contains(text, line) {
				onPage = now
			}
			time.Sleep(20 * time.Millisecond) // the two polls' own pace, not a wait for a state
		}
		if inFile.IsZero() || onPage.IsZero() {
			t.Fatalf("%q: in the log at %v, on the page at %v", line, inFile, onPage)
		}
		if d := onPage.Sub(inFile); d > time.Second {
			t.Errorf("%q on the page %v after it reached the log, want within a second", line, d)
		}
	}
}

// TestWebPageRefusesStrangers: on http_addr, no request gets past
// authentication, and no action runs without the page's token, even from
// an authenticated user.
func TestWebPageRefusesStrangers(t *testing.T) {
	e, _, base := webEnv(t)
	old := e.pids("echo")
	do := func(method, path, user, pass string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/ui/", "/ui/daemons/echo", "/ui/daemons/echo/log", "/v1/status", "/metrics"} {
		code, _ := do("GET", path, "", "", nil)
		if code != http.StatusUnauthorized && !(code == http.StatusNotFound && !strings.HasPrefix(path, "/ui/")) {
			t.Errorf("GET %s without credentials: %d", path, code)
		}
		if code, _ := do("GET", path, "ann", "wrong", nil); code != http.StatusUnauthorized && !(code == http.StatusNotFound && !strings.HasPrefix(path, "/ui/")) {
			t.Errorf("GET %s with a wrong password: %d", path, code)
		}
	}
	// The control API is not on http_addr at all.
	if code, _ := do("GET", "/v1/status", "ann", "ann-pw", nil); code != http.StatusNotFound {
		t.Errorf("control API on http_addr: %d", code)
	}
	if code, _ := do("POST", "/ui/daemons/echo/restart", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("POST without credentials: %d", code)
	}
	if code, body := do("POST", "/ui/daemons/echo/restart", "ann", "ann-pw", nil); code != http.StatusForbidden {
		t.Errorf("POST without the token: %d %s", code, body)
	}
	if code, _ := do("POST", "/ui/daemons/echo/stop", "ann", "ann-pw", url.Values{"token": {"forged"}}); code != http.StatusForbidden {
		t.Errorf("POST with a forged token: %d", code)
	}
	if got := e.pids("echo"); len(got) != len(old) || e.status().daemon("echo").State != "running" {
		t.Fatalf("a refused POST changed the daemon: %v -> %v", old, got)
	}
	for pid := range old {
		if !e.pids("echo")[pid] {
			t.Fatalf("worker %d went after refused posts", pid)
		}
	}
	if !strings.Contains(e.log(), "action without a valid token refused") {
		t.Errorf("refused actions are not logged")
	}
}

// screenshot saves the page to $NSFD_SCREENSHOTS/name when that is set
// (docs/ holds the ones the README shows).
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("NSFD_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
