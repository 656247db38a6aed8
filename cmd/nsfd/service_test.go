//go:build linux

package main

// `nsfd service`: what install writes under --root is init/'s reference
// file with the two paths substituted, systemd-analyze accepts it, and
// uninstall removes it. Without a service manager, the answer is an error.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateInit = flag.Bool("update-init", false, "rewrite init/nsfd.service and init/com.nsfd.nsfd.plist from what `nsfd service install` writes")

// Paths of the reference files in init/.
const (
	refBin = "/usr/local/bin/nsfd"
	refEtc = "/etc/nsfd"
)

// serviceRun runs the built nsfd with extra environment variables.
func serviceRun(tb testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		tb.Fatal(err)
	}
	if strings.Contains(e.String(), "panic:") || strings.Contains(e.String(), "goroutine ") {
		tb.Fatalf("nsfd %s panicked:\n%s", strings.Join(args, " "), e.String())
	}
	return o.String(), e.String(), code
}

// installed installs with --root into a fresh root and returns the file
// written at rel under it.
func installed(tb testing.TB, e *env, rel string, env []string, args ...string) (root, path string, text string) {
	tb.Helper()
	root = tb.TempDir()
	args = append([]string{"service", "install", "--etc", e.etc, "--root", root}, args...)
	out, errOut, code := serviceRun(tb, env, args...)
	if code != 0 {
		tb.Fatalf("nsfd %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	path = filepath.Join(root, rel)
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("install wrote no %s: %v (stdout: %s)", rel, err, out)
	}
	if !strings.Contains(out, path) {
		tb.Errorf("install output does not name %s: %q", path, out)
	}
	return root, path, string(b)
}

// matchReference compares text, with this test's binary and etc paths
// replaced by refBin and refEtc, to init/name (or rewrites it with -update-init).
func matchReference(tb testing.TB, e *env, text, name string) {
	tb.Helper()
	if !strings.Contains(text, filepath.Join(binDir, "nsfd")) || !strings.Contains(text, e.etc) {
		tb.Fatalf("%s names neither %s nor %s:\n%s", name, filepath.Join(binDir, "nsfd"), e.etc, text)
	}
	got := strings.NewReplacer(filepath.Join(binDir, "nsfd"), refBin, e.etc, refEtc).Replace(text)
	ref := filepath.Join(repoDir, "init", name)
	if *updateInit {
		if err := os.WriteFile(ref, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(ref)
	if err != nil {
		tb.Fatal(err)
	}
	if got != string(want) {
		tb.Errorf("`nsfd service install` and init/%s disagree (go test ./cmd/nsfd -run TestService -update-init rewrites it)\ninstall writes:\n%s\ninit/%s:\n%s", name, got, name, want)
	}
}

// systemdVerify runs systemd-analyze verify on a unit and fails on any
// complaint, warnings included.
func systemdVerify(tb testing.TB, unit string, user bool) {
	tb.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		tb.Fatal("systemd-analyze not found: install it (apt-get install systemd; .ci/setup does) to check the unit `nsfd service install` writes")
	}
	args := []string{"verify", unit}
	cmd := exec.Command(analyze, args...)
	if user {
		// The user manager wants a runtime directory, even to verify.
		rt := tb.TempDir()
		os.Chmod(rt, 0o700)
		cmd = exec.Command(analyze, append([]string{"--user"}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		tb.Errorf("systemd-analyze %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
	}
}

func TestServiceInstallSystemdUnit(t *testing.T) {
	e := newEnv(t)
	rel := "etc/systemd/system/nsfd.service"
	root, path, unit := installed(t, e, rel, nil)

	for _, d := range []string{
		"Type=notify",
		"NotifyAccess=main",
		"ExecStart=" + filepath.Join(binDir, "nsfd") + " run --etc " + e.etc,
		"ExecReload=/bin/kill -HUP $MAINPID",
		"KillMode=mixed",
		"TimeoutStopSec=30",
		"Restart=on-failure",
		"WantedBy=multi-user.target",
	} {
		if !strings.Contains(unit, "\n"+d+"\n") {
			t.Errorf("unit lacks %q:\n%s", d, unit)
		}
	}
	matchReference(t, e, unit, "nsfd.service")
	systemdVerify(t, path, false)

	// Installing twice is refused, as kardianos/service refuses it.
	if _, errOut, code := serviceRun(t, nil, "service", "install", "--etc", e.etc, "--root", root); code != 1 || !strings.Contains(errOut, "already installed") {
		t.Errorf("second install: exit %d, stderr %q; want 1 and already installed", code, errOut)
	}

	// The global --etc works as well as the verb's.
	root2 := t.TempDir()
	if out, errOut, code := e.nsfd("service", "install", "--root", root2); code != 0 {
		t.Fatalf("install with the global --etc: exit %d: %s%s", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(root2, rel)); err != nil || string(b) != unit {
		t.Errorf("install with the global --etc wrote (%v):\n%s\nwant:\n%s", err, b, unit)
	}

	if out, errOut, code := serviceRun(t, nil, "service", "uninstall", "--root", root); code != 0 {
		t.Fatalf("uninstall: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("uninstall left %s: %v", path, err)
	}
	if _, errOut, code := serviceRun(t, nil, "service", "uninstall", "--root", root); code != 1 || !strings.Contains(errOut, "not installed") {
		t.Errorf("second uninstall: exit %d, stderr %q; want 1 and not installed", code, errOut)
	}
}

func TestServiceInstallSystemdUserUnit(t *testing.T) {
	e := newEnv(t)
	home := t.TempDir()
	env := []string{"HOME=" + home}
	rel := filepath.Join(home, ".config/systemd/user/nsfd.service")
	root, path, unit := installed(t, e, rel, env, "--user")

	if !strings.Contains(unit, "WantedBy=default.target\n") || strings.Contains(unit, "network-online.target") {
		t.Errorf("a user unit is wanted by default.target and has no network-online.target:\n%s", unit)
	}
	// Otherwise it is the system unit.
	system := strings.NewReplacer(
		"install --user`", "install`",
		"systemctl --user edit", "systemctl edit",
		"Documentation=https://github.com/nsfd/nsfd\n", "Documentation=https://github.com/nsfd/nsfd\nWants=network-online.target\nAfter=network-online.target\n",
		"default.target", "multi-user.target",
	).Replace(unit)
	matchReference(t, e, system, "nsfd.service")
	systemdVerify(t, path, true)

	if out, errOut, code := serviceRun(t, env, "service", "uninstall", "--user", "--root", root); code != 0 {
		t.Fatalf("uninstall --user: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("uninstall --user left %s: %v", path, err)
	}
}

func TestServiceInstallLaunchdPlist(t *testing.T) {
	e := newEnv(t)
	rel := "Library/LaunchDaemons/com.nsfd.nsfd.plist"
	root, path, plist := installed(t, e, rel, nil, "--manager", "launchd")
	matchReference(t, e, plist, "com.nsfd.nsfd.plist")

	// The plist is well-formed, and launchd runs `nsfd run --etc DIR`.
	d := xml.NewDecoder(strings.NewReader(plist))
	var strs []string
	inArgs := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plist is not well-formed XML: %v\n%s", err, plist)
		}
		switch tok := tok.(type) {
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s == "ProgramArguments" {
				inArgs = true
			} else if inArgs && s != "" {
				strs = append(strs, s)
			}
		case xml.EndElement:
			if tok.Name.Local == "array" {
				inArgs = false
			}
		}
	}
	want := []string{filepath.Join(binDir, "nsfd"), "run", "--etc", e.etc}
	if strings.Join(strs, " ") != strings.Join(want, " ") {
		t.Errorf("ProgramArguments = %q, want %q", strs, want)
	}
	for _, k := range []string{"<key>KeepAlive</key>", "<key>RunAtLoad</key>\n\t<true/>"} {
		if !strings.Contains(plist, k) {
			t.Errorf("plist lacks %s", k)
		}
	}

	// A launchd agent goes to the user's LaunchAgents.
	home := t.TempDir()
	installed(t, e, filepath.Join(home, "Library/LaunchAgents/com.nsfd.nsfd.plist"), []string{"HOME=" + home}, "--manager", "launchd", "--user")

	if out, errOut, code := serviceRun(t, nil, "service", "uninstall", "--manager", "launchd", "--root", root); code != 0 {
		t.Fatalf("uninstall: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("uninstall left %s: %v", path, err)
	}
}

func TestServiceLogrotateSnippet(t *testing.T) {
	ref := filepath.Join(repoDir, "init", "nsfd.logrotate")
	b, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, d := range []string{"missingok", "notifempty", "compress", "delaycompress", "postrotate",
		// SIGUSR1 to the master alone: workers are in the same unit.
		"systemctl kill --kill-who=main --signal=USR1 " + serviceName + ".service"} {
		if !strings.Contains(text, "\t"+d) {
			t.Errorf("init/nsfd.logrotate lacks %q", d)
		}
	}
	if lr, err := exec.LookPath("logrotate"); err == nil {
		// Debug mode parses and reports; it rotates nothing.
		out, err := exec.Command(lr, "--debug", "--state", filepath.Join(t.TempDir(), "state"), ref).CombinedOutput()
		if err != nil || strings.Contains(string(out), "error:") {
			t.Errorf("logrotate --debug init/nsfd.logrotate: %v\n%s", err, out)
		}
	}
}

func TestServiceUsageErrors(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"service"},
		{"service", "enable"},
		{"service", "status", "--root", t.TempDir()},
		{"service", "install", "--manager", "upstart", "--root", t.TempDir()},
		{"service", "install", "extra"},
	} {
		if _, errOut, code := e.nsfd(args...); code != 2 {
			t.Errorf("nsfd %s: exit %d, want 2 (usage)\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	// Without --root, only this host's manager.
	other := managerLaunchd
	if hostManager() == managerLaunchd {
		other = managerSystemd
	}
	if _, errOut, code := e.nsfd("service", "install", "--manager", other); code != 2 || !strings.Contains(errOut, "--root") {
		t.Errorf("install --manager %s without --root: exit %d, want 2 naming --root\n%s", other, code, errOut)
	}
	// An etc directory that does not exist is not installed.
	if _, errOut, code := e.nsfd("service", "install", "--etc", filepath.Join(e.dir, "nope"), "--root", t.TempDir()); code != 1 || !strings.Contains(errOut, "nope") {
		t.Errorf("install of a missing etc: exit %d, want 1 naming it\n%s", code, errOut)
	}
}

// TestServiceWithoutServiceManager asks for a status, and to start and
// install, where no systemd runs: a clear error, no panic, nothing written.
func TestServiceWithoutServiceManager(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil || hostManager() != managerSystemd {
		// A real service manager: only the status, which changes nothing.
		_, errOut, code := serviceRun(t, nil, "service", "status")
		if code == 2 {
			t.Errorf("service status: usage error: %s", errOut)
		}
		t.Skip("systemd runs here; the no-service-manager case needs a machine without it")
	}
	e := newEnv(t)
	const unit = "/etc/systemd/system/nsfd.service"
	_, statErr := os.Stat(unit)
	for _, args := range [][]string{
		{"service", "status"},
		{"service", "status", "--user"},
		{"service", "start"},
		{"service", "install", "--etc", e.etc},
		{"service", "uninstall"},
	} {
		_, errOut, code := serviceRun(t, nil, args...)
		if code != 1 || !strings.Contains(errOut, "systemd is not running here") || !strings.Contains(errOut, "--root") {
			t.Errorf("nsfd %s: exit %d, stderr %q; want 1 and that systemd is not running, pointing at --root", strings.Join(args, " "), code, errOut)
		}
	}
	if _, err := os.Stat(unit); err == nil && statErr != nil {
		t.Errorf("install without systemd wrote %s", unit)
	}
}
