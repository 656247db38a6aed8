//go:build linux

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A changed nsfd.ini is applied by a reload: the master re-executes itself
// in place (log level, log file, heartbeat), no worker restarted; what
// cannot change live (run_dir) is reported by reload and status.
func TestReloadAppliesMasterSettings(t *testing.T) {
	needPump(t, "refuses nsfd upgrade (its workers' pipes and exits are not handed over)")
	t.Parallel()
	bin := buildNsfd(t, "-X main.Version=up-old")
	e, m, addr := upgradeEnv(t, bin)
	before := e.upStatus()
	if !strings.Contains(e.log(), "[DEBUG]") {
		t.Fatal("no debug line in the log at level debug")
	}
	other := filepath.Join(e.dir, "var", "log", "other.log")
	// Written in place of the file; the watcher may reload before we do.
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[registry]\nheartbeat = 7s\n[log]\nfile = ../var/log/other.log\nlevel = info\n")
	out, errOut, code := e.nsfd("reload")
	if code != 0 {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, "the re-exec", 20*time.Second, func() bool { return e.upStatus().Upgrades == 1 })
	after := e.upStatus()
	if after.PID != before.PID || !slices.Equal(workerPIDs(after, "up"), workerPIDs(before, "up")) {
		t.Errorf("before pid %d workers %v, after pid %d workers %v", before.PID, workerPIDs(before, "up"), after.PID, workerPIDs(after, "up"))
	}
	for _, k := range []string{"log.file", "log.level", "registry.heartbeat"} {
		if !strings.Contains(after.UpgradeReason, k) {
			t.Errorf("upgrade reason %q lacks %s", after.UpgradeReason, k)
		}
	}
	echo(t, addr, "after the re-exec")
	waitFor(t, "worker lines in the new log file", 10*time.Second, func() bool {
		b, _ := os.ReadFile(other)
		return strings.Contains(string(b), "stdout: served ")
	})
	b, _ := os.ReadFile(other)
	if strings.Contains(string(b), "[DEBUG]") || !strings.Contains(string(b), "nsfd upgraded in place") {
		t.Errorf("new log file at level info:\n%s", b)
	}

	// run_dir cannot move under running workers: said by reload and status.
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run2\ncontrol_socket = ../var/run/nsfd.sock\n[registry]\nheartbeat = 7s\n[log]\nfile = ../var/log/other.log\nlevel = info\n")
	out, errOut, code = e.nsfd("reload")
	if code != 0 || !strings.Contains(out, "nsfd.run_dir changed but not applied") {
		t.Errorf("reload with a new run_dir: exit %d\n%s%s", code, out, errOut)
	}
	st := e.upStatus()
	if st.PendingSettings["nsfd.run_dir"] == "" || st.Upgrades != 1 {
		t.Errorf("status: pending %v, upgrades %d", st.PendingSettings, st.Upgrades)
	}
	out, _, _ = e.nsfd("status")
	if !strings.Contains(out, "nsfd.run_dir changed but not applied") {
		t.Errorf("status does not say run_dir is pending:\n%s", out)
	}
	_ = m
}
