package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDependencyAndHookKeys(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, MasterFileName, "[hooks]\non_fatal = ./page-oncall --loud\ntimeout = 5s\nmax_concurrent = 2\n")
	writeFile(t, etc, "db.ini", "command = /bin/db\nport = 127.0.0.1:0\n")
	writeFile(t, etc, "cache.ini", "command = /bin/cache\nport = 127.0.0.1:0\n")
	writeFile(t, etc, "app.ini", "command = /bin/app\nport = 127.0.0.1:0\nrequires = db\nafter = cache, metrics\n"+
		"fatal_retry = 10s\non_restart = /usr/bin/logger -t nsfd \"worker restarted\"\non_recover = bin/tell\n")
	s, err := Load(etc)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Errors) > 0 {
		t.Fatalf("errors: %v", s.Errors)
	}
	if h := s.Master.Hooks; !reflect.DeepEqual(h.Commands, HookCommands{HookFatal: {filepath.Join(etc, "page-oncall"), "--loud"}}) || h.Timeout != 5*time.Second || h.Concurrency != 2 {
		t.Errorf("master hooks: %+v", h)
	}
	var app *Daemon
	for _, d := range s.Daemons {
		if d.Name == "app" {
			app = d
		}
		if d.Name == "db" && d.FatalRetry != DefaultFatalRetry {
			t.Errorf("db fatal_retry %v, want the default", d.FatalRetry)
		}
	}
	if !reflect.DeepEqual(app.Requires, []string{"db"}) || !reflect.DeepEqual(app.After, []string{"cache", "metrics"}) || app.FatalRetry != 10*time.Second {
		t.Errorf("app: requires %q after %q fatal_retry %v", app.Requires, app.After, app.FatalRetry)
	}
	want := HookCommands{HookRestart: {"/usr/bin/logger", "-t", "nsfd", "worker restarted"}, HookRecover: {filepath.Join(etc, "bin/tell")}}
	if !reflect.DeepEqual(app.Hooks, want) {
		t.Errorf("app hooks %q, want %q", app.Hooks, want)
	}
	// after orders the start, an unknown name included (it is not a dependency).
	var order [][]string
	for _, g := range s.StartOrder() {
		var names []string
		for _, d := range g {
			names = append(names, d.Name)
		}
		order = append(order, names)
	}
	if !reflect.DeepEqual(order, [][]string{{"cache", "db"}, {"app"}}) {
		t.Errorf("start order %q", order)
	}
}

func TestDependencyAndHookKeyErrors(t *testing.T) {
	for _, tt := range []struct{ file, text, want string }{
		{"a.ini", "command = /bin/a\nport = 127.0.0.1:0\nfatal_retry = soon\n", `a.ini:3: key "fatal_retry"`},
		{"a.ini", "command = /bin/a\nport = 127.0.0.1:0\non_fatal = tell ; oops\n", `a.ini:3: key "on_fatal": "; oops" would be dropped as a comment`},
		{"a.ini", "command = /bin/a\nport = 127.0.0.1:0\nafter = b\n", `a.ini:3: key "after": start order cycle (requires and after): a -> b -> a`},
		{"a.ini", "command = /bin/a\nport = 127.0.0.1:0\nidle_timeout = 1m\n", `a.ini:3: key "idle_timeout": applies to a daemon started on demand only (min_servers = 0)`},
		{"a.ini", "command = /bin/a\nport = 127.0.0.1:0\nmin_servers = -1\n", `a.ini:3: key "min_servers"`},
		{MasterFileName, "[hooks]\ntimeout = 0s\n", `nsfd.ini:2: key "timeout": must be positive`},
		{MasterFileName, "[hooks]\nmax_concurrent = 0\n", `nsfd.ini:2: key "max_concurrent": must be at least 1`},
		{MasterFileName, "[hooks]\non_boot = x\n", `nsfd.ini:2: key "on_boot": unknown key in [hooks]`},
	} {
		etc := t.TempDir()
		writeFile(t, etc, "b.ini", "command = /bin/b\nport = 127.0.0.1:0\nrequires = a\n")
		writeFile(t, etc, tt.file, tt.text)
		var msg string
		s, err := Load(etc)
		if err != nil {
			msg = err.Error()
		} else {
			for _, e := range s.Errors {
				msg += e.Error() + "\n"
			}
		}
		if !strings.Contains(msg, etc+"/"+tt.want) {
			t.Errorf("%s %q: %s\nwant %s", tt.file, tt.text, msg, tt.want)
		}
	}
}
