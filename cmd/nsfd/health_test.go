//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Health checks end to end: real masters, real http workers, a shared
// SQLite registry.

// healthConf is a daemon file of the http example with a health check
// (its lines in check), /healthz sick while the file sick exists.
func healthConf(sick, check string) string {
	return "command = " + filepath.Join(binDir, "http") + " --sick-file " + sick + " --shutdown-timeout 5s\n" +
		"port = 127.0.0.1:0\ntype = notify\nmin_servers = 2\nmax_servers = 4\nmin_spare_servers = 1\nmax_spare_servers = 2\n" +
		"graceful_timeout = 10s\nhealth_interval = 200ms\nhealth_timeout = 2s\nhealth_failures = 3\n" + check
}

// healthOf is what `nsfd status --json` says of daemon name's health.
type healthOf struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	Health *struct {
		Checking bool   `json:"checking"`
		Healthy  bool   `json:"healthy"`
		Failures int    `json:"failures"`
		Reason   string `json:"reason"`
		Rolls    int    `json:"rolls"`
	} `json:"health"`
}

func (e *env) health(name string) healthOf {
	e.t.Helper()
	out, errOut, code := e.nsfd("status", "--json", name)
	if code != 0 {
		e.t.Fatalf("status --json %s: %d %s", name, code, errOut)
	}
	var st struct {
		Daemons []healthOf `json:"daemons"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Daemons) != 1 || st.Daemons[0].Health == nil {
		e.t.Fatalf("status --json %s: %v\n%s", name, err, out)
	}
	return st.Daemons[0]
}

// httpLoad keeps clients busy with GET / on addr, a new connection each,
// until stop; it counts what failed.
type httpLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stopc      chan struct{}
	wg         sync.WaitGroup
}

func startHTTPLoad(addr string, clients int) *httpLoad {
	l := &httpLoad{stopc: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range clients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				resp, err := c.Get("http://" + addr + "/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					l.errs = append(l.errs, err.Error())
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

func (l *httpLoad) stop(t *testing.T) {
	t.Helper()
	close(l.stopc)
	l.wg.Wait()
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during the health rolls: %q", n, n+l.ok.Load(), l.errs[:min(len(l.errs), 5)])
	}
	if l.ok.Load() < 20 {
		t.Errorf("only %d requests served", l.ok.Load())
	}
}

// rolled waits until none of old's workers is left and the daemon has
// workers again: its workers were rolled.
func rolled(t *testing.T, e *env, name string, old map[int]bool) {
	t.Helper()
	waitFor(t, name+"'s workers rolled", 30*time.Second, func() bool {
		now := e.pids(name)
		for pid := range now {
			if old[pid] {
				return false
			}
		}
		return len(now) > 0
	})
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPHealthCheck: /healthz starts answering 503 on alpha; status says
// why, `nsfd resolve` skips alpha's endpoint while beta's is healthy,
// every 3 failures alpha's workers are rolled with no request lost; with
// both sick, resolve returns both, marked; a healthy answer clears it.
func TestHTTPHealthCheck(t *testing.T) {
	t.Parallel()
	shared := t.TempDir()
	dsn := filepath.Join(shared, "registry.db")
	nodes := map[string]*env{}
	sick := map[string]string{}
	for _, node := range []string{"alpha", "beta"} {
		e := newEnv(t)
		e.write("nsfd.ini", "[nsfd]\nnode_name = "+node+"\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n"+
			"[registry]\ntype = sqlite\ndsn = "+dsn+"\nheartbeat = 1s\n")
		sick[node] = filepath.Join(e.dir, "sick")
		e.write("web.ini", healthConf(sick[node], "health = http:/healthz\n"))
		nodes[node] = e
		e.start()
	}
	alpha, beta := nodes["alpha"], nodes["beta"]
	alpha.waitReady()
	beta.waitReady()
	resolve := func() []string {
		out, _, _ := alpha.nsfd("resolve", "web")
		return strings.Split(strings.TrimSpace(out), "\n")
	}
	waitFor(t, "both nodes' web registered", 15*time.Second, func() bool { return len(resolve()) == 2 })
	alphaAddr := strings.TrimPrefix(alpha.status().daemon("web").Listeners[0], "tcp ")
	betaAddr := strings.TrimPrefix(beta.status().daemon("web").Listeners[0], "tcp ")
	if h := alpha.health("web"); !h.Health.Checking || !h.Health.Healthy {
		t.Fatalf("alpha's web before: %+v", *h.Health)
	}

	load := startHTTPLoad(alphaAddr, 3)
	waitFor(t, "requests before", 10*time.Second, func() bool { return load.ok.Load() > 10 })
	old := alpha.pids("web")
	touch(t, sick["alpha"])
	waitFor(t, "alpha's web unhealthy", 10*time.Second, func() bool { return !alpha.health("web").Health.Healthy })
	h := alpha.health("web")
	if h.State != "running" || !strings.HasPrefix(h.Reason, "unhealthy: GET /healthz: 503 (") || !strings.HasSuffix(h.Reason, " in a row)") {
		t.Errorf("status --json: state %q reason %q", h.State, h.Reason)
	}
	if out, _, _ := alpha.nsfd("status", "web"); !strings.Contains(out, "unhealthy: GET /healthz: 503 (") {
		t.Errorf("status does not say web is unhealthy:\n%s", out)
	}
	waitFor(t, "alpha's endpoint left out", 10*time.Second, func() bool {
		eps := resolve()
		return len(eps) == 1 && eps[0] == "tcp "+betaAddr
	})
	rolled(t, alpha, "web", old)
	if h := alpha.health("web"); h.Health.Rolls < 1 || h.Health.Failures < 3 {
		t.Errorf("after the roll: %+v", *h.Health)
	}
	// Still sick after the roll (the file stays): rolled again.
	rolled(t, alpha, "web", alpha.pids("web"))

	// Both sick: both returned, marked, rather than nothing.
	touch(t, sick["beta"])
	waitFor(t, "both endpoints, unhealthy", 10*time.Second, func() bool {
		eps := resolve()
		return len(eps) == 2 && strings.HasSuffix(eps[0], " unhealthy") && strings.HasSuffix(eps[1], " unhealthy")
	})

	for _, p := range sick {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "alpha's web healthy again", 10*time.Second, func() bool {
		h := alpha.health("web")
		return h.Health.Healthy && h.Reason == ""
	})
	waitFor(t, "both endpoints healthy", 10*time.Second, func() bool {
		eps := resolve()
		return len(eps) == 2 && !strings.Contains(eps[0]+eps[1], "unhealthy")
	})
	load.stop(t)
}

// TestExecHealthCheck: a check program (run without a shell, with the
// daemon's name and addresses in its environment, its output in the
// central log) starts failing: the daemon is unhealthy, its only endpoint
// is still resolved (marked), its workers are rolled with no request lost;
// recovery clears it.
func TestExecHealthCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	flag := filepath.Join(e.dir, "down")
	check := `health = exec:/bin/sh -c 'echo checking "$NSFD_DAEMON" at "$NSFD_ADDRESS"; test ! -e ` + flag + `'` + "\n"
	e.write("web.ini", healthConf(filepath.Join(e.dir, "never"), check))
	e.start()
	e.waitReady()
	waitFor(t, "web checked", 15*time.Second, func() bool {
		d := e.status().daemon("web")
		return d != nil && d.State == "running" && strings.Contains(e.log(), "health check output")
	})
	addr := strings.TrimPrefix(e.status().daemon("web").Listeners[0], "tcp ")
	if log := e.log(); !strings.Contains(log, "checking web at "+addr) {
		t.Errorf("the check's output, with NSFD_DAEMON and NSFD_ADDRESS, is not in the central log:\n%s", log)
	}

	load := startHTTPLoad(addr, 3)
	waitFor(t, "requests before", 10*time.Second, func() bool { return load.ok.Load() > 10 })
	old := e.pids("web")
	touch(t, flag)
	waitFor(t, "web unhealthy", 10*time.Second, func() bool { return !e.health("web").Health.Healthy })
	if h := e.health("web"); !strings.HasPrefix(h.Reason, "unhealthy: sh: exit status 1 (") {
		t.Errorf("reason %q", h.Reason)
	}
	// The only node: its endpoint is returned, marked.
	waitFor(t, "web resolved, marked", 10*time.Second, func() bool {
		out, _, _ := e.nsfd("resolve", "web")
		return strings.TrimSpace(out) == "tcp "+addr+" unhealthy"
	})
	rolled(t, e, "web", old)
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web healthy again", 10*time.Second, func() bool { return e.health("web").Health.Healthy })
	waitFor(t, "web resolved, healthy", 10*time.Second, func() bool {
		out, _, _ := e.nsfd("resolve", "web")
		return strings.TrimSpace(out) == "tcp "+addr
	})
	load.stop(t)
}
