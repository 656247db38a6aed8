//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
)

// The master's own sockets, the control socket and its TCP endpoints
// metrics_addr and http_addr, are kept across a re-execution for a changed
// nsfd.ini and across `nsfd upgrade`: the same port (127.0.0.1:0 stays the
// port it got), and not one request refused or cut while the process
// execs, as clients poll them (requests under way are answered first,
// those that come meanwhile wait in the backlog for the new binary).
func TestUpgradeKeepsControlMetricsAndWebPage(t *testing.T) {
	needPump(t, "refuses nsfd upgrade (its workers' pipes and exits are not handed over)")
	t.Parallel()
	bin := buildNsfd(t, "-X main.Version=up-endpoints")
	e := newEnv(t)
	// metrics_addr a port of the test's (a closed one then refuses), http_addr any.
	maddr := testport.Reserve(t)
	ini := "[nsfd]\nrun_dir = ../var/run\nmetrics_addr = " + maddr + "\nhttp_addr = 127.0.0.1:0\n[log]\nfile = ../var/log/nsfd.log\nlevel = %s\n"
	e.write("nsfd.ini", fmt.Sprintf(ini, "debug"))
	if err := os.WriteFile(filepath.Join(e.etc, "served.py"), []byte(servedWorker), 0o644); err != nil {
		t.Fatal(err)
	}
	e.write("up.ini", "command = python3 "+filepath.Join(e.etc, "served.py")+"\nport = 127.0.0.1:0\nmin_servers = 1\nmax_servers = 1\n")
	m := e.startBin(bin)
	e.waitReady()

	addrs := func() (metrics, page []string) {
		lg := e.log()
		for _, mm := range regexp.MustCompile(`nsfd: metrics: addr=(\S+)`).FindAllStringSubmatch(lg, -1) {
			metrics = append(metrics, mm[1])
		}
		for _, mm := range regexp.MustCompile(`nsfd: web page: url=(\S+)`).FindAllStringSubmatch(lg, -1) {
			page = append(page, mm[1])
		}
		return metrics, page
	}
	var metricsURL, pageURL string
	waitFor(t, "both addresses in the log", 10*time.Second, func() bool {
		ms, ps := addrs()
		if len(ms) == 0 || len(ps) == 0 {
			return false
		}
		metricsURL, pageURL = "http://"+ms[0]+"/metrics", ps[0]
		return true
	})

	// One poller per TCP endpoint and three on the control socket (so that
	// a request is under way on it when the process execs), a new
	// connection per request, bounded.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ctlClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(e.dir, "var/run/nsfd.sock"))
		}}}
	type poller struct {
		c *http.Client
		u string
	}
	pollers := []poller{{client, metricsURL}, {client, pageURL}}
	for range 3 {
		pollers = append(pollers, poller{ctlClient, "http://nsfd/v1/status"})
	}
	done := make(chan struct{}, len(pollers))
	for _, p := range pollers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200000 {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := p.c.Get(p.u)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s: %s", p.u, resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	defer func() {
		close(stop)
		for range pollers {
			<-done
		}
	}()
	waitFor(t, "polling", 10*time.Second, func() bool { return ok.Load() > 50 })
	inode := listenInode(t, maddr)

	// A changed nsfd.ini: re-executed in place.
	e.write("nsfd.ini", fmt.Sprintf(ini, "info"))
	e.nsfd("reload") // may be cut by the exec, if the watcher was first
	waitFor(t, "the re-exec", 20*time.Second, func() bool { return e.upStatus().Upgrades == 1 })
	mark := ok.Load()
	waitFor(t, "polling after the re-exec", 10*time.Second, func() bool { return ok.Load() > mark+50 })

	// An upgrade to a binary (the same one).
	if out, errOut, code := e.nsfd("upgrade"); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, "the upgrade", 20*time.Second, func() bool { return e.upStatus().Upgrades == 2 })
	mark = ok.Load()
	waitFor(t, "polling after the upgrade", 10*time.Second, func() bool { return ok.Load() > mark+50 })

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the re-exec and the upgrade; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if got := listenInode(t, maddr); got != inode {
		t.Errorf("metrics_addr's socket: inode %s before, %s after", inode, got)
	}
	ms, ps := addrs()
	if len(ms) != 3 || len(ps) != 3 {
		t.Errorf("want 3 starts of each endpoint in the log, got metrics %v, web page %v", ms, ps)
	}
	for _, a := range ms {
		if "http://"+a+"/metrics" != metricsURL {
			t.Errorf("metrics_addr moved: %v", ms)
		}
	}
	for _, u := range ps {
		if u != pageURL {
			t.Errorf("http_addr moved: %v", ps)
		}
	}

	// Removed from nsfd.ini: the next re-exec closes its socket.
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\nhttp_addr = 127.0.0.1:0\n[log]\nfile = ../var/log/nsfd.log\nlevel = info\n")
	e.nsfd("reload")
	waitFor(t, "the third re-exec", 20*time.Second, func() bool { return e.upStatus().Upgrades == 3 })
	waitFor(t, "metrics_addr closed", 10*time.Second, func() bool {
		resp, err := client.Get(metricsURL)
		if err == nil {
			resp.Body.Close()
		}
		return err != nil && strings.Contains(err.Error(), "connection refused")
	})
	if !strings.Contains(e.log(), "socket no longer set in nsfd.ini; closed: setting=metrics_addr") {
		t.Errorf("the log does not say the metrics socket was closed")
	}
	if _, ps := addrs(); len(ps) != 4 || ps[3] != pageURL {
		t.Errorf("http_addr after metrics_addr went: %v, want %s", ps, pageURL)
	}
	if code := m.stop(); code != 0 {
		t.Errorf("master exit %d", code)
	}
}

// A binary whose preflight does not say tcp-endpoints (one older than the
// hand-over of metrics_addr and http_addr) gets neither socket: they close
// with the exec, and it binds the same fixed address again, not "address
// already in use" from a socket it never knew it inherited.
func TestUpgradeToBinaryWithoutEndpointHandOver(t *testing.T) {
	needPump(t, "refuses nsfd upgrade (its workers' pipes and exits are not handed over)")
	t.Parallel()
	bin := buildNsfd(t, "-X main.Version=up-endpoints")
	old := filepath.Join(t.TempDir(), "nsfd-old")
	script := "#!/bin/sh\n" +
		"# nsfd as a binary older than the hand-over of the TCP endpoints\n" +
		"case \" $* \" in *\" upgrade-preflight \"*) " + bin + " \"$@\" | sed 's/ tcp-endpoints$//'; exit 0 ;; esac\n" +
		"exec " + bin + " \"$@\"\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	maddr := testport.Reserve(t)
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\nmetrics_addr = "+maddr+"\n[log]\nfile = ../var/log/nsfd.log\n")
	m := e.startBin(bin)
	e.waitReady()
	get := func() error {
		resp, err := http.Get("http://" + maddr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	waitFor(t, "metrics before the upgrade", 10*time.Second, func() bool { return get() == nil })
	before := listenInode(t, maddr)
	if out, errOut, code := e.nsfd("upgrade", "--binary", old); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, "the upgrade", 20*time.Second, func() bool { return e.upStatus().Upgrades == 1 })
	waitFor(t, "metrics after the upgrade", 10*time.Second, func() bool { return get() == nil })
	if after := listenInode(t, maddr); after == before {
		t.Errorf("the socket of metrics_addr (inode %s) went through an upgrade to a binary that does not adopt it", before)
	}
	if lg := e.log(); strings.Contains(lg, "address already in use") || strings.Contains(lg, "cannot adopt socket") {
		t.Errorf("the log of an upgrade with no endpoint hand-over:\n%s", lg)
	}
	if code := m.stop(); code != 0 {
		t.Errorf("master exit %d", code)
	}
}

// listenInode returns the inode of the TCP socket listening on addr
// (127.0.0.1:PORT), from /proc/net/tcp.
func listenInode(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", p)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[3] == "0A" { // LISTEN
			return f[9]
		}
	}
	t.Fatalf("no socket listens on %s", addr)
	return ""
}
