//go:build linux

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logTime returns the time of the first central log line matching re, or
// the zero time.
func logTime(t *testing.T, log string, re string) time.Time {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(\S+) .*` + re).FindStringSubmatch(log)
	if m == nil {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatalf("log time %q: %v", m[1], err)
	}
	return at
}

// TestRequiresWaitsForReady: a dependent's workers start only once its
// dependency's first worker is ready (here after 2 s), not when the
// dependency starts.
func TestRequiresWaitsForReady(t *testing.T) {
	e := newEnv(t)
	pool := "min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n"
	e.write("db.ini", "command = /bin/sh -c 'sleep 2; exec "+filepath.Join(binDir, "echo")+"'\nport = 127.0.0.1:0\ntype = notify\n"+pool)
	e.write("app.ini", echoConf(pool+"requires = db\n"))
	e.start()
	e.waitReady()
	waitFor(t, "app waiting for db", 10*time.Second, func() bool {
		d := e.status().daemon("app")
		return d != nil && d.State == "waiting"
	})
	if out, _, _ := e.nsfd("status", "app"); !strings.Contains(out, "waiting") {
		t.Errorf("status app: %q", out)
	}
	waitFor(t, "app running", 20*time.Second, func() bool {
		d := e.status().daemon("app")
		return d != nil && d.State == "running"
	})
	log := e.log()
	dbStarted := logTime(t, log, `nsfd\.db: daemon started`)
	dbReady := logTime(t, log, `nsfd\.db: daemon state: state=running`)
	appStarted := logTime(t, log, `nsfd\.app: daemon started`)
	if dbReady.Sub(dbStarted) < 1500*time.Millisecond {
		t.Fatalf("db ready %v after its start, want about 2s", dbReady.Sub(dbStarted))
	}
	if appStarted.Before(dbReady) {
		t.Fatalf("app started at %v, before db was ready at %v", appStarted, dbReady)
	}
}

// TestRequiresHeldWhileFatalAndFatalRetry: a dependency whose program is
// missing goes fatal, its dependent waits saying so; once the program
// appears, fatal_retry brings the dependency back, the dependent starts by
// itself, and the hooks fire with their environment.
func TestRequiresHeldWhileFatalAndFatalRetry(t *testing.T) {
	e := newEnv(t)
	prog := filepath.Join(e.dir, "later", "db")
	pool := "min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n"
	e.write("db.ini", "command = "+prog+"\nport = 127.0.0.1:0\ntype = notify\n"+pool+
		"start_retries = 2\nbackoff_initial = 50ms\nfatal_retry = 1s\non_fatal = /usr/bin/env\non_recover = /usr/bin/env\n")
	e.write("app.ini", echoConf(pool+"requires = db\n"))
	e.start()
	e.waitReady()
	waitFor(t, "db fatal, app waiting for it", 15*time.Second, func() bool {
		st := e.status()
		db, app := st.daemon("db"), st.daemon("app")
		return db != nil && app != nil && db.State == "fatal" && app.State == "waiting"
	})
	out, _, _ := e.nsfd("status", "--json")
	if !strings.Contains(out, `"reason": "waiting for db: fatal"`) {
		t.Errorf("status does not say what app waits for:\n%s", out)
	}
	if !strings.Contains(out, `"next_retry"`) {
		t.Errorf("status does not say when db tries again:\n%s", out)
	}
	if len(e.pids("app")) != 0 {
		t.Fatal("app has workers while db is fatal")
	}
	// The program appears: the next fatal_retry starts db, then app.
	if err := os.MkdirAll(filepath.Dir(prog), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(binDir, "echo"), prog); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "db and app running", 30*time.Second, func() bool {
		st := e.status()
		db, app := st.daemon("db"), st.daemon("app")
		return db != nil && app != nil && db.State == "running" && app.State == "running" && len(app.Workers) > 0
	})
	waitFor(t, "the hooks' output", 10*time.Second, func() bool {
		l := e.log()
		return strings.Contains(l, "NSFD_EVENT=fatal") && strings.Contains(l, "NSFD_EVENT=recover")
	})
	log := e.log()
	for _, want := range []string{"nsfd.db: hook output: event=fatal line=NSFD_DAEMON=db",
		"NSFD_REASON=start_retries failed starts in a row", "NSFD_REASON=running again after fatal"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestRequiresStopsDependentsFirst: stopping a required daemon stops its
// dependent first; starting it again starts the dependent by itself. A
// worker killed fires on_restart with its pid and how it ended.
func TestRequiresStopsDependentsFirst(t *testing.T) {
	e := newEnv(t)
	pool := "min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n"
	e.write("db.ini", echoConf(pool+"on_restart = /usr/bin/env\n"))
	e.write("app.ini", echoConf(pool+"requires = db\n"))
	e.start()
	e.waitReady()
	waitFor(t, "app running", 20*time.Second, func() bool {
		d := e.status().daemon("app")
		return d != nil && d.State == "running"
	})
	// on_restart: a worker of db killed.
	var victim int
	for pid := range e.pids("db") {
		victim = pid
	}
	syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, "on_restart's output", 10*time.Second, func() bool {
		return strings.Contains(e.log(), "NSFD_PID="+strconv.Itoa(victim))
	})
	// Killed young, it counts as a failed start; older, as a crash.
	if l := e.log(); !strings.Contains(l, "NSFD_EVENT=restart") || !strings.Contains(l, "NSFD_EXIT_STATUS=signal killed") ||
		!strings.Contains(l, "NSFD_REASON=crashed") && !strings.Contains(l, "NSFD_REASON=failed-start") {
		t.Errorf("on_restart's environment is not the event's")
	}

	if _, errOut, code := e.nsfd("stop", "db"); code != 0 {
		t.Fatalf("stop db: %d %s", code, errOut)
	}
	st := e.status()
	if st.daemon("app").State != "waiting" {
		t.Fatalf("app after stop db: %+v", st.daemon("app"))
	}
	log := e.log()
	appStopped, dbStopped := logTime(t, log, `nsfd\.app: daemon stopped`), logTime(t, log, `nsfd\.db: daemon stopped`)
	if appStopped.IsZero() || dbStopped.IsZero() || dbStopped.Before(appStopped) {
		t.Fatalf("app stopped at %v, db at %v: app must stop first", appStopped, dbStopped)
	}
	if _, errOut, code := e.nsfd("start", "db"); code != 0 {
		t.Fatalf("start db: %d %s", code, errOut)
	}
	waitFor(t, "app running again", 20*time.Second, func() bool {
		d := e.status().daemon("app")
		return d != nil && d.State == "running"
	})
}
