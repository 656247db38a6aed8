package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every min_servers/max_servers pair Net::Server::PreFork allows is valid
// with the spare keys unset; an explicit spare value keeps its value.
func TestDeriveSpares(t *testing.T) {
	for mn := 1; mn <= 30; mn++ {
		for mx := mn; mx <= 40; mx++ {
			d := &Daemon{MinServers: mn, MaxServers: mx}
			deriveSpares(d, false, false)
			pool := map[string]int{"min_servers": mn, "max_servers": mx,
				"min_spare_servers": d.MinSpareServers, "max_spare_servers": d.MaxSpareServers}
			for _, r := range poolRules {
				if !r.ok(pool[r.a], pool[r.b]) {
					t.Errorf("min %d max %d: derived %v breaks %s %s %s", mn, mx, pool, r.a, r.rel, r.b)
				}
			}
			if mx > DefaultMaxSpareServers && mn >= DefaultMinSpareServers &&
				(d.MinSpareServers != DefaultMinSpareServers || d.MaxSpareServers != DefaultMaxSpareServers) {
				t.Errorf("min %d max %d: %d/%d, want the plain defaults", mn, mx, d.MinSpareServers, d.MaxSpareServers)
			}
		}
	}
	d := &Daemon{MinServers: 4, MaxServers: 8, MinSpareServers: 3}
	deriveSpares(d, true, false)
	if d.MinSpareServers != 3 || d.MaxSpareServers != 7 {
		t.Errorf("explicit min_spare_servers 3: %d/%d", d.MinSpareServers, d.MaxSpareServers)
	}
	d = &Daemon{MinServers: 4, MaxServers: 8, MaxSpareServers: 9}
	deriveSpares(d, false, true)
	if d.MaxSpareServers != 9 {
		t.Errorf("explicit max_spare_servers changed to %d", d.MaxSpareServers)
	}
}

// The README's echo.ini and a file with only command and port pass check.
func TestSmallPoolsLoad(t *testing.T) {
	for name, text := range map[string]string{
		"readme.ini": "command = /bin/cat\nport = 127.0.0.1:7001\ntype = notify\nmin_servers = 2\nmax_servers = 8\n",
		"small.ini":  "command = /bin/cat\nport = 127.0.0.1:7002\nmin_servers = 1\nmax_servers = 2\n",
		"one.ini":    "command = /bin/cat\nport = 127.0.0.1:7003\nmin_servers = 1\nmax_servers = 1\n",
		"bare.ini":   "command = /bin/cat\nport = 127.0.0.1:7004\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Check(dir); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.ini"), []byte("command = /bin/cat\nport = 127.0.0.1:7005\nmin_servers = 1\nmax_servers = 2\nmin_spare_servers = 2\n"), 0o644)
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), `min_spare_servers (2) must not be greater than min_servers (1)`) {
		t.Errorf("an explicit invalid min_spare_servers: %v", err)
	}
}
