//go:build linux

package main

// End-to-end tests of live reload, the control socket and its CLI verbs.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testport"
)

// load keeps n clients busy against addr, each doing one echo per
// connection, until stop is called; it returns the counts.
type load struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
	mu         sync.Mutex
	errs       []string
}

func startLoad(addr string, n int) *load {
	l := &load{stop: make(chan struct{})}
	for i := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := tryEcho(addr, fmt.Sprintf("client %d request %d", i, j)); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err.Error())
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("load: %d requests ok, %d failed", l.ok.Load(), l.failed.Load())
	if l.failed.Load() > 0 {
		t.Errorf("%d requests failed, want 0: %v", l.failed.Load(), l.errs)
	}
	if l.ok.Load() == 0 {
		t.Error("no request succeeded")
	}
}

func TestNewFileStartsDaemonAndRemovalDrainsIt(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	m.addr("echo")
	e.waitReady()

	start := time.Now()
	// On a port held for the test: once extra is removed, a freed port of
	// its could be given to another test process's echo server, which would
	// answer in its place.
	e.write("extra.ini", strings.Replace(echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n"),
		"127.0.0.1:0", testport.Reserve(t), 1))
	var addr string
	waitFor(t, "extra to answer", 10*time.Second, func() bool {
		d := e.status().daemon("extra")
		if d == nil || d.State != "running" || len(d.Listeners) == 0 {
			return false
		}
		addr = strings.Fields(d.Listeners[0])[1]
		return tryEcho(addr, "new daemon") == nil
	})
	answered := time.Since(start)
	waitFor(t, "extra to resolve", 10*time.Second, func() bool {
		out, _, code := e.nsfd("resolve", "extra")
		return code == 0 && out == "tcp "+addr+"\n"
	})
	t.Logf("file drop to answering: %v, to resolving: %v (target 150ms)", answered, time.Since(start))
	if answered > 3*time.Second {
		t.Errorf("new daemon took %v to answer", answered)
	}
	pids := e.pids("extra")

	os.Remove(filepath.Join(e.etc, "extra.ini"))
	waitFor(t, "extra gone from status", 15*time.Second, func() bool { return e.status().daemon("extra") == nil })
	for pid := range pids {
		if alive(pid) {
			t.Errorf("worker %d of the removed daemon still runs", pid)
		}
	}
	if err := tryEcho(addr, "gone"); err == nil {
		t.Error("the removed daemon's port still answers")
	}
	waitFor(t, "extra unregistered", 10*time.Second, func() bool {
		_, _, code := e.nsfd("resolve", "extra")
		return code == 1
	})
	if e.status().daemon("echo") == nil {
		t.Error("echo disappeared")
	}
}

func TestVimStyleSaveReloadsOnce(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	m.addr("echo")
	e.waitReady()
	before := e.status().Reloads

	// What vim does with backupcopy=no: probe file, rename the original away, write the new file, drop the backup.
	path := filepath.Join(e.etc, "echo.ini")
	os.WriteFile(filepath.Join(e.etc, "4913"), nil, 0o644)
	os.Remove(filepath.Join(e.etc, "4913"))
	os.WriteFile(filepath.Join(e.etc, ".echo.ini.swp"), []byte("swap"), 0o644)
	os.Rename(path, path+"~")
	os.WriteFile(path, []byte(echoConf("min_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 3\n")), 0o644)
	os.Remove(path + "~")

	waitFor(t, "2 workers", 10*time.Second, func() bool { return len(e.pids("echo")) == 2 })
	// Let any straggling event be processed: a reload request is answered only
	// after the loop has handled everything queued before it.
	after := e.status().Reloads
	if after-before != 1 {
		t.Errorf("%d reloads for one save, want exactly 1", after-before)
	}
	if !strings.Contains(e.log(), `resized=["echo"]`) {
		t.Error("a pool-size change should be applied in place")
	}
}

func TestRollingChangesDropNoConnection(t *testing.T) {
	e := newEnv(t)
	conf := func(gen int) string {
		return echoConf(fmt.Sprintf("min_servers = 4\nmin_spare_servers = 1\nmax_spare_servers = 3\nmax_servers = 12\ngraceful_timeout = 5s\n[env]\nGENERATION = %d\n", gen))
	}
	e.write("echo.ini", conf(0))
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	waitFor(t, "4 workers", 15*time.Second, func() bool { return len(e.pids("echo")) == 4 })
	first := e.pids("echo")

	l := startLoad(addr, 16)
	for gen := 1; gen <= 20; gen++ {
		before := e.status().Reloads
		e.write("echo.ini", conf(gen))
		waitFor(t, "reload "+strconv.Itoa(gen), 10*time.Second, func() bool { return e.status().Reloads > before })
	}
	// The last roll completes: only new workers, none of the first ones.
	waitFor(t, "the roll to finish", 20*time.Second, func() bool {
		for pid := range e.pids("echo") {
			if first[pid] {
				return false
			}
		}
		return true
	})
	// The same with `nsfd restart`.
	before := e.pids("echo")
	if out, errOut, code := e.nsfd("restart", "echo"); code != 0 {
		t.Fatalf("nsfd restart: %d %s %s", code, out, errOut)
	}
	waitFor(t, "restart to roll every worker", 20*time.Second, func() bool {
		now := e.pids("echo")
		for pid := range now {
			if before[pid] {
				return false
			}
		}
		return len(now) >= 4
	})
	l.finish(t)
}

func TestBrokenEditKeepsOldConfigUntilFixed(t *testing.T) {
	e := newEnv(t)
	good := echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n")
	e.write("echo.ini", good)
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	waitFor(t, "2 workers", 15*time.Second, func() bool { return len(e.pids("echo")) == 2 })
	pids := e.pids("echo")

	e.write("echo.ini", good+"min_sever = 3\n")
	waitFor(t, "the error in status", 10*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d != nil && strings.Contains(d.ConfigError, "echo.ini:8: key \"min_sever\": unknown key")
	})
	echo(t, addr, "old workers still serve")
	for pid := range pids {
		if !alive(pid) {
			t.Fatalf("worker %d was stopped by a broken edit", pid)
		}
	}
	out, _, code := e.nsfd("status")
	if code != 1 || !strings.Contains(out, "config error:") {
		t.Errorf("human status (exit %d) does not show the error:\n%s", code, out)
	}
	if !strings.Contains(e.log(), "echo.ini:8") {
		t.Error("the error is not in the log")
	}

	// Fixed: applied (min_servers 3 now).
	e.write("echo.ini", strings.Replace(good, "min_servers = 2", "min_servers = 3", 1))
	waitFor(t, "the fix to apply", 10*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d != nil && d.ConfigError == "" && len(d.Workers) == 3
	})
}

func TestBrokenMasterConfigKeepsEverything(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	ini, _ := os.ReadFile(filepath.Join(e.etc, "nsfd.ini"))
	e.write("nsfd.ini", string(ini)+"[registry]\ntype = oracle\n")
	e.write("other.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	waitFor(t, "the master config error in the log", 10*time.Second, func() bool {
		return strings.Contains(e.log(), "nsfd.ini does not load; keeping the running configuration")
	})
	if e.status().daemon("other") != nil {
		t.Error("a daemon was added although nsfd.ini is broken")
	}
	echo(t, addr, "still serving")
}

func TestWorldWritableDaemonFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the check applies to a master running as root")
	}
	e := newEnv(t)
	conf := echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	e.write("echo.ini", conf)
	e.write("bad.ini", conf)
	os.Chmod(filepath.Join(e.etc, "bad.ini"), 0o666)
	m := e.start()
	addr := m.addr("echo")
	e.waitReady()
	waitFor(t, "bad.ini's error in status", 10*time.Second, func() bool {
		for _, fe := range e.status().Errors {
			if strings.Contains(fe.Error, "bad.ini: refused: writable by every user (mode 0666") {
				return true
			}
		}
		return false
	})
	if e.status().daemon("bad") != nil {
		t.Fatal("a world-writable daemon file was started")
	}
	if !strings.Contains(e.log(), "bad.ini: refused: writable by every user") {
		t.Error("the refusal is not in the log")
	}
	if _, errOut, code := e.nsfd("check"); code != 1 || !strings.Contains(errOut, "bad.ini: refused") {
		t.Errorf("nsfd check: %d %q", code, errOut)
	}

	// A running daemon whose file becomes world-writable keeps its workers and is not rolled.
	pids := e.pids("echo")
	os.Chmod(filepath.Join(e.etc, "echo.ini"), 0o666)
	e.write("echo.ini", conf+"[env]\nX = 1\n") // a change that would roll the workers
	waitFor(t, "echo's refusal in status", 10*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d != nil && strings.Contains(d.ConfigError, "refused: writable by every user")
	})
	for pid := range pids {
		if !alive(pid) {
			t.Errorf("worker %d was restarted from a world-writable file", pid)
		}
	}
	echo(t, addr, "still the old config")
}

func TestReplacedEtcDirIsWatchedAgain(t *testing.T) {
	e := newEnv(t)
	conf := echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	e.write("echo.ini", conf)
	m := e.start()
	m.addr("echo")
	e.waitReady()

	// Replace etc/ wholesale, as a deploy tool that swaps directories does.
	ini, _ := os.ReadFile(filepath.Join(e.etc, "nsfd.ini"))
	if err := os.Rename(e.etc, e.etc+".old"); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(e.etc, 0o755)
	e.write("nsfd.ini", string(ini))
	e.write("echo.ini", conf)
	e.write("second.ini", conf)
	waitFor(t, "the new etc/ to apply", 10*time.Second, func() bool {
		d := e.status().daemon("second")
		return d != nil && d.State == "running"
	})
	// And it is watched: a later change applies too.
	os.Remove(filepath.Join(e.etc, "second.ini"))
	waitFor(t, "second removed", 10*time.Second, func() bool { return e.status().daemon("second") == nil })
}

func TestRequiresOrder(t *testing.T) {
	e := newEnv(t)
	conf := echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	e.write("a.ini", conf+"requires = b\n")
	e.write("b.ini", conf+"requires = c\n")
	e.write("c.ini", conf)
	m := e.start()
	m.addr("a")
	waitFor(t, "3 daemons", 15*time.Second, func() bool { return len(m.workers("echo")) == 3 })
	m.stop()
	// Started c, b, a; stopped a, b, c.
	idx := func(s string) int { return strings.Index(e.log(), s) }
	if !(idx("nsfd.c: daemon started") < idx("nsfd.b: daemon started") && idx("nsfd.b: daemon started") < idx("nsfd.a: daemon started")) {
		t.Error("daemons did not start in requires order")
	}
	if !(idx("nsfd.a: daemon stopped") < idx("nsfd.b: daemon stopped") && idx("nsfd.b: daemon stopped") < idx("nsfd.c: daemon stopped")) {
		t.Error("daemons did not stop in reverse requires order")
	}
}

func TestShutdownWhileADaemonDrains(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	// A worker that takes its graceful_timeout to go.
	e.write("slow.ini", "command = /bin/sh -c \"trap '' TERM; echo slow; while :; do sleep 1; done\"\nport = 127.0.0.1:0\ngraceful_timeout = 1s\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	m.addr("slow")
	e.waitReady()
	waitFor(t, "slow running", 10*time.Second, func() bool { return strings.Contains(e.log(), "stdout: slow") })
	os.Remove(filepath.Join(e.etc, "slow.ini"))
	waitFor(t, "slow draining", 10*time.Second, func() bool { return strings.Contains(e.log(), "nsfd.slow: daemon file removed; draining") })
	if code := m.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
