package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUntrustedFilesRefusedAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the check applies to a master running as root; chown needs root")
	}
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode, uid, gid int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chown(p, uid, gid)
		return p
	}
	ok := "command = /bin/true\nport = 127.0.0.1:0\n"
	for _, tc := range []struct {
		name      string
		mode      os.FileMode
		uid, gid  int
		wantError string
	}{
		{"good.ini", 0o644, 0, 0, ""},
		{"rootgroup.ini", 0o664, 0, 0, ""},
		{"world.ini", 0o666, 0, 0, "writable by every user (mode 0666, owner 0:0)"},
		{"group.ini", 0o664, 0, 65534, "writable by group gid 65534 (mode 0664, owner 0:65534)"},
		{"owner.ini", 0o644, 65534, 0, "writable by its owner uid 65534 (mode 0644, owner 65534:0)"},
	} {
		p := write(tc.name, ok, tc.mode, tc.uid, tc.gid)
		_, err := LoadDaemon(p, nil)
		if tc.wantError == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), p+": refused: "+tc.wantError) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.wantError)
		}
	}
	// An env_file is held to the same rule.
	write("env", "A=1\n", 0o666, 0, 0)
	p := write("withenv.ini", ok+"env_file = env\n", 0o644, 0, 0)
	if _, err := LoadDaemon(p, nil); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Errorf("world-writable env_file: %v", err)
	}
	// For a master that is not root: no check.
	if _, errs, _ := loadDaemon(filepath.Join(dir, "world.ini"), nil, RunAs{UID: 1000}); len(errs) > 0 {
		t.Errorf("as non-root: %v", errs)
	}
}
