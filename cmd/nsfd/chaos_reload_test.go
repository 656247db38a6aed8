//go:build linux

package main

// Fault injection, scenario 2: a long series of configuration changes
// under load (the two forms and the report: chaos_test.go).

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestChaosRollingReloads applies a long series of configuration changes
// under load, of three kinds in turn: an [env] change (the workers roll onto
// it), a pool-size change (applied in place), and `nsfd restart` (a roll
// without a change). Each change is applied before the next is made, but the
// rolls are not waited for: they overlap. No request may fail.
func TestChaosRollingReloads(t *testing.T) {
	sc := chaosParams()
	e := newEnv(t)
	conf := func(gen, minServers int) string {
		return echoConf(fmt.Sprintf("min_servers = %d\nmin_spare_servers = 1\nmax_spare_servers = 3\nmax_servers = 12\ngraceful_timeout = 5s\nstart_seconds = 10ms\n[env]\nGENERATION = %d\n", minServers, gen))
	}
	gen, minServers := 0, 4
	e.write("echo.ini", conf(gen, minServers))
	m := e.start()
	addr := m.addr("echo")
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready workers", 15*time.Second, func() bool { return len(c.ready("echo", nil)) == 4 })

	l := startLoad(addr, 16)
	start := time.Now()
	var rolls, resizes, restarts int
	var applied []time.Duration
	var lastRestart map[int]bool // the workers the last `nsfd restart` rolled
	peak := 0
	for i := 1; i <= sc.reloads; i++ {
		select {
		case <-m.exited:
			t.Fatalf("the master exited at change %d: %v", i, m.err)
		default:
		}
		t0 := time.Now()
		switch i % 4 {
		case 1, 3: // a roll
			gen++
			rolls++
			before := c.status().Reloads
			chaosWriteFile(t, e, "echo.ini", conf(gen, minServers))
			waitFor(t, "reload "+strconv.Itoa(i), 10*time.Second, func() bool { return c.status().Reloads > before })
		case 2: // pool size, in place
			minServers = 10 - minServers // 4 <-> 6
			resizes++
			before := c.status().Reloads
			chaosWriteFile(t, e, "echo.ini", conf(gen, minServers))
			waitFor(t, "reload "+strconv.Itoa(i), 10*time.Second, func() bool { return c.status().Reloads > before })
		case 0:
			restarts++
			lastRestart = c.pids("echo")
			if out, errOut, code := e.nsfd("restart", "echo"); code != 0 {
				t.Fatalf("nsfd restart: %d %s %s", code, out, errOut)
			}
		}
		applied = append(applied, time.Since(t0))
		peak = max(peak, len(m.workers("echo")))
	}
	// The last change settles: every worker runs the last generation, none
	// is one the last restart rolled, and there are as many as asked.
	want := "GENERATION=" + strconv.Itoa(gen)
	var settled time.Duration
	waitFor(t, "the last roll to finish", 30*time.Second, func() bool {
		ws := m.workers("echo")
		if len(ws) < minServers {
			return false
		}
		for _, pid := range ws {
			if !slices.Contains(procEnviron(pid), want) || !alive(pid) || lastRestart[pid] {
				return false
			}
		}
		settled = time.Since(start)
		return len(c.ready("echo", nil)) >= minServers
	})
	ok, failed := l.halt()

	// Every file change was one reload: a roll or an in-place resize, without errors.
	var logRolled, logResized, logErrors int
	waitFor(t, "every reload in the log", 10*time.Second, func() bool {
		logRolled, logResized, logErrors = 0, 0, 0
		for _, line := range strings.Split(e.log(), "\n") {
			if !strings.Contains(line, "nsfd: reloaded") {
				continue
			}
			if strings.Contains(line, `rolled=["echo"]`) {
				logRolled++
			}
			if strings.Contains(line, `resized=["echo"]`) {
				logResized++
			}
			if !strings.Contains(line, "errors=0") {
				logErrors++
			}
		}
		return logRolled+logResized >= rolls+resizes
	})
	ap := summarize(applied)
	chaosReport(t, "rolling reloads", sc,
		fig("changes: env rolls / in-place resizes / nsfd restart", fmt.Sprintf("%d / %d / %d", rolls, resizes, restarts), "", ""),
		fig("change → applied, median / p99 / max", ap.String(), "", ""),
		fig("first change → last roll finished", settled.Round(time.Millisecond).String(), "", ""),
		fig("most worker processes seen (draining ones included)", strconv.Itoa(peak), "", ""),
		fig("requests ok / failed", fmt.Sprintf("%d / %d", ok, failed), "0 failed", metMissed(failed == 0)),
	)
	if logRolled != rolls || logResized != resizes || logErrors != 0 {
		t.Errorf("the log shows %d rolls, %d resizes and %d reloads with errors; want %d, %d and 0", logRolled, logResized, logErrors, rolls, resizes)
	}
	if failed > 0 {
		t.Errorf("%d requests failed, want 0: %v", failed, l.errs)
	}
	if ok == 0 {
		t.Error("no request succeeded")
	}
}

// procEnviron returns a process's environment.
func procEnviron(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return strings.Split(string(b), "\x00")
}
