//go:build linux

package main

// End-to-end tests of `nsfd check` and `nsfd version`.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckReportsBrokenConfigs(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(repoDir, "config/testdata/broken/*"))
	if err != nil || len(cases) < 20 {
		t.Fatalf("want at least 20 broken configs, found %d (%v)", len(cases), err)
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "want"))
			if err != nil {
				t.Fatal(err)
			}
			etc := filepath.Join(dir, "etc")
			cmd := exec.Command(filepath.Join(binDir, "nsfd"), "check", "--etc", etc)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("nsfd check: %v, want exit status 1\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), "panic") {
				t.Fatalf("panic:\n%s", stderr.String())
			}
			line := filepath.Join(etc, strings.TrimSpace(string(want)))
			if !strings.Contains(stderr.String(), line+"\n") {
				t.Errorf("nsfd check output lacks\n  %s\ngot:\n%s", line, stderr.String())
			}
		})
	}
}

func TestCheckAndVersion(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf(""))
	if out, errOut, code := e.nsfd("check"); code != 0 || !strings.Contains(out, "ok, 1 daemon") {
		t.Fatalf("check: %d %q %q", code, out, errOut)
	}
	if out, _, code := e.nsfd("version"); code != 0 || !strings.HasPrefix(out, "nsfd ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if _, errOut, code := e.nsfd("frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown verb: %d %q", code, errOut)
	}
}
