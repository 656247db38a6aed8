package config

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestHealthKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name, text string
		want       HealthCheck
		poolOnly   bool // against the same file without health keys
	}{
		{"none", "", HealthCheck{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Failures: DefaultHealthFailures}, true},
		{"http", "health = http:/healthz?deep=1\n",
			HealthCheck{Kind: HealthHTTP, Path: "/healthz?deep=1", Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Failures: DefaultHealthFailures}, true},
		{"exec", "health = exec:bin/check --port 'a b'\nhealth_interval = 1s\nhealth_timeout = 500ms\nhealth_failures = 1\n",
			HealthCheck{Kind: HealthExec, Command: []string{filepath.Join(dir, "bin/check"), "--port", "a b"}, Interval: time.Second, Timeout: 500 * time.Millisecond, Failures: 1}, true},
	}
	base := "daemon_name = web\ncommand = /bin/cat\nport = 127.0.0.1:7001\n"
	plain, err := LoadDaemon(writeFile(t, dir, "plain.ini", base), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		d, err := LoadDaemon(writeFile(t, dir, c.name+".ini", base+c.text), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(d.Health, c.want) {
			t.Errorf("%s: Health = %+v, want %+v", c.name, d.Health, c.want)
		}
		if got := d.PoolOnlyChange(plain); got != c.poolOnly {
			t.Errorf("%s: PoolOnlyChange = %v: a health change is applied in place", c.name, got)
		}
	}
	if s := (HealthCheck{Kind: HealthExec, Command: []string{"/bin/x", "-a"}}).String(); s != "exec:/bin/x -a" {
		t.Errorf("String() = %q", s)
	}
}
