package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// check reports a program that is missing or not executable and two
// daemons on one address; Load does not refuse them.
func TestStrictCheck(t *testing.T) {
	etc := t.TempDir()
	noexec := writeFile(t, etc, "prog.txt", "not a program")
	writeFile(t, etc, "missing.ini", "command = /nonexistent/prog\nport = 127.0.0.1:7101\n")
	writeFile(t, etc, "nopath.ini", "command = no-such-program-nsfd --x\nport = 127.0.0.1:7102\n")
	writeFile(t, etc, "noexec.ini", "command = "+noexec+"\nport = 127.0.0.1:7103\n")
	writeFile(t, etc, "a.ini", "command = /bin/sh\nport = 127.0.0.1:7104\n")
	writeFile(t, etc, "b.ini", "command = /bin/sh\nport = 127.0.0.1:7104\n")
	writeFile(t, etc, "zero1.ini", "command = sh\nport = 127.0.0.1:0\n")
	writeFile(t, etc, "zero2.ini", "command = sh\nport = 127.0.0.1:0\n")
	writeFile(t, etc, "health.ini", "command = sh\nport = 127.0.0.1:7105\nhealth = exec:/nonexistent/probe --x\n")
	writeFile(t, etc, "hook.ini", "command = sh\nport = 127.0.0.1:7106\non_fatal = "+noexec+"\n")
	err := Check(etc)
	if err == nil {
		t.Fatal("Check passed")
	}
	got := err.Error()
	for _, want := range []string{
		`missing.ini:1: key "command": program /nonexistent/prog: no such file or directory`,
		`nopath.ini:1: key "command": program "no-such-program-nsfd" is not found in PATH`,
		`noexec.ini:1: key "command": program ` + noexec + ` (mode 0644) is not executable`,
		`a.ini:2: key "port": tcp 127.0.0.1:7104 is also a listener of ` + filepath.Join(etc, "b.ini"),
		`b.ini:2: key "port": tcp 127.0.0.1:7104 is also a listener of ` + filepath.Join(etc, "a.ini"),
		`health.ini:3: key "health": program /nonexistent/probe: no such file or directory`,
		`hook.ini:3: key "on_fatal": program ` + noexec + ` (mode 0644) is not executable`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Check lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "zero") {
		t.Errorf("port 0 counted as a clash:\n%s", got)
	}
	s, err := Load(etc)
	if err != nil || len(s.Errors) != 0 {
		t.Errorf("Load refuses what only check reports: %v %v", err, s.Errors)
	}
}
