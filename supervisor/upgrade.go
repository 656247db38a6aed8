package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsfd/nsfd/prefork"
)

// An upgrade (nsfd upgrade, SIGUSR2) re-executes a binary in place of the
// master: same pid, so the workers stay its children and systemd's MainPID
// does not change. The master first runs the binary's preflight
// (PreflightArg) and refuses a binary that does not run or cannot read
// this master's hand-over version; then, on Run's goroutine, it freezes
// every pool, takes the workers' pipes out of the process backend, writes
// the hand-over (handover.go), clears close-on-exec on every fd it names,
// flushes the log and calls execve. The new binary adopts it all (adopt.go):
// no listener is closed, no worker touched, no line of output lost. If
// execve fails, everything is put back and the master runs on.

// PreflightArg is the hidden verb an upgrade runs the new binary with:
// `nsfd upgrade-preflight --handover-version` prints PreflightLine.
const PreflightArg = "upgrade-preflight"

// preflightTimeout bounds the new binary's preflight run.
const preflightTimeout = 10 * time.Second

// PreflightLine is what a binary of version, reading hand-over versions
// minV to maxV, answers the preflight with: then the hand-over features it
// takes beyond those versions (featureTCPEndpoints), which a master older
// than a feature neither prints nor reads.
func PreflightLine(version string, minV, maxV int) string {
	return fmt.Sprintf("nsfd-handover %d %d %s %s", minV, maxV, version, featureTCPEndpoints)
}

// featureTCPEndpoints: the binary adopts the listeners of metrics_addr and
// http_addr from the hand-over's Extra (metrics_fd, http_fd). A master
// hands them only to a binary that says so: an older one would find the
// port taken by the inherited socket and fail to bind it.
const featureTCPEndpoints = "tcp-endpoints"

// ErrUpgradeRefused is wrapped by the error of an upgrade refused before
// anything changed: the binary failed its preflight, or the master is not
// in a state to hand over.
var ErrUpgradeRefused = errors.New("upgrade refused")

// UpgradeResult is what a failed-after-preflight upgrade reports; a
// successful one does not return (the process is the new binary).
type UpgradeResult struct {
	Binary     string `json:"binary"`
	NewVersion string `json:"new_version"`
}

// upgradeState is the master's upgrade history, for Status.
type upgradeState struct {
	ctl *control  // the control socket, handed over
	res *resolver // the resolver socket, handed over; nil if none

	mu         sync.Mutex
	running    bool
	upgrades   int               // upgrades of this master (pid) so far
	upgradedAt time.Time         // when the last one happened
	from       string            // the version before it
	failures   int               // upgrades that failed after their preflight
	lastErr    string            // the last refusal or failure
	reason     string            // why the last one happened
	pending    map[string]string // nsfd.ini settings that cannot change live (masterconf.go)
}

// Upgrade re-executes binary (default: this executable's path) in place of
// the master. It returns an error wrapping ErrUpgradeRefused if the binary
// fails its preflight or the master cannot hand over now, and any other
// error if the exec itself failed (the master runs on, as before). On
// success it does not return: the process runs the new binary.
func (s *Supervisor) Upgrade(ctx context.Context, binary string) (UpgradeResult, error) {
	r, err := s.upgrade(ctx, binary)
	if err != nil {
		s.upgradeFailed(err)
	}
	return r, err
}

// upgradeFailed records and logs an upgrade that did not happen.
func (s *Supervisor) upgradeFailed(err error) {
	s.up.mu.Lock()
	s.up.lastErr = err.Error()
	if !errors.Is(err, ErrUpgradeRefused) {
		s.up.failures++
	}
	s.up.mu.Unlock()
	s.log.Error("upgrade failed; this master runs on", "error", err)
}

func (s *Supervisor) upgrade(ctx context.Context, binary string) (UpgradeResult, error) {
	var r UpgradeResult
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return r, fmt.Errorf("%w: find own executable: %w", ErrUpgradeRefused, err)
		}
		binary = exe
	}
	abs, err := filepath.Abs(binary)
	if err != nil {
		return r, fmt.Errorf("%w: %s: %w", ErrUpgradeRefused, binary, err)
	}
	r.Binary = abs
	s.up.mu.Lock()
	busy := s.up.running
	s.up.running = true
	s.up.mu.Unlock()
	if busy {
		return r, fmt.Errorf("%w: an upgrade is under way", ErrUpgradeRefused)
	}
	defer func() {
		s.up.mu.Lock()
		s.up.running = false
		s.up.mu.Unlock()
	}()
	if err := trustedBinary(abs); err != nil {
		return r, fmt.Errorf("%w: %s: %w", ErrUpgradeRefused, abs, err)
	}
	s.log.Info("upgrade: preflight of the new binary", "binary", abs)
	var features []string
	if r.NewVersion, features, err = preflight(ctx, abs, s.master.Dir); err != nil {
		return r, fmt.Errorf("%w: %s: %w", ErrUpgradeRefused, abs, err)
	}
	t := target{binary: abs, version: r.NewVersion, tcpEndpoints: slices.Contains(features, featureTCPEndpoints)}
	herr, derr := s.doHandOver(ctx, t, "upgrade to "+abs)
	if derr != nil {
		return r, fmt.Errorf("%w: %w", ErrUpgradeRefused, derr)
	}
	return r, herr
}

// preflight runs binary's preflight on etc (it loads nsfd.ini and the
// daemon files, as the new master will) and returns its version and the
// hand-over features it takes, if it reads the hand-over version this
// master writes.
func preflight(ctx context.Context, binary, etc string) (string, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--etc", etc, PreflightArg, "--handover-version")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		switch {
		case ctx.Err() != nil:
			return "", nil, fmt.Errorf("preflight did not answer within %s", preflightTimeout)
		case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
			return "", nil, fmt.Errorf("no such file")
		case errors.Is(err, os.ErrPermission):
			return "", nil, fmt.Errorf("not executable: %w", err)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", nil, fmt.Errorf("preflight failed (%s): %s", ee.ProcessState, lastLine(stderr.Bytes()))
		}
		// ENOEXEC: another architecture, or not a program at all.
		return "", nil, fmt.Errorf("cannot run it (wrong architecture, or not a program?): %w", err)
	}
	line := lastLine(stdout.Bytes())
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "nsfd-handover" {
		return "", nil, fmt.Errorf("not an nsfd binary that can take over a running master: preflight said %q", line)
	}
	minV, err1 := strconv.Atoi(f[1])
	maxV, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return "", nil, fmt.Errorf("preflight said %q", line)
	}
	if HandoverVersion < minV || HandoverVersion > maxV {
		return "", nil, fmt.Errorf("it reads hand-over versions %d to %d; this master writes version %d", minV, maxV, HandoverVersion)
	}
	return f[3], f[4:], nil
}

func lastLine(b []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			last = t
		}
	}
	if len(last) > 300 {
		last = last[:300] + "…"
	}
	return last
}

// freezer is a Pool that can be handed over (prefork.Pool).
type freezer interface {
	Freeze(ctx context.Context) (prefork.PoolHandover, func(), error)
}

// target is the binary a hand-over re-executes: its path, its version,
// and whether it adopts the metrics_addr and http_addr listeners.
type target struct {
	binary       string
	version      string
	tcpEndpoints bool
}

// doHandOver runs handOver on Run's goroutine. The servers of the control
// socket and of the TCP endpoints pause first, off Run's goroutine (a
// request under way may wait for it): requests under way are answered,
// but the one in ctx that asked for this, those that come meanwhile wait
// in the sockets' backlog for the new binary; they serve again if the
// exec did not happen. herr is handOver's error, derr the one of reaching
// Run.
func (s *Supervisor) doHandOver(ctx context.Context, t target, reason string) (herr, derr error) {
	if s.up.ctl != nil {
		self, _ := ctx.Value(connKey{}).(net.Conn) // the request that asked for it, if one did
		s.up.ctl.pause(ctx, self, t.tcpEndpoints)
		defer s.up.ctl.resume(t.tcpEndpoints)
	}
	derr = s.do(ctx, func(runCtx context.Context) { herr = s.handOver(runCtx, t, reason) })
	return herr, derr
}

// handOver writes the hand-over and re-executes t's binary, on Run's
// goroutine; it returns only if that failed, with everything put back.
func (s *Supervisor) handOver(ctx context.Context, t target, reason string) (err error) {
	binary, newVersion := t.binary, t.version
	hv, ok := s.opts.Procs.(prefork.Handover)
	if !ok || s.up.ctl == nil {
		return fmt.Errorf("%w: this master's process backend cannot hand its workers over", ErrUpgradeRefused)
	}
	for _, d := range s.daemons {
		switch {
		case d.draining:
			return fmt.Errorf("%w: daemon %s is stopping; upgrade once it has stopped", ErrUpgradeRefused, d.cfg.Name)
		case d.configErr != nil:
			return fmt.Errorf("%w: daemon %s's file does not load (%v); fix it first", ErrUpgradeRefused, d.cfg.Name, d.configErr)
		}
	}
	s.up.mu.Lock()
	upgrades := s.up.upgrades
	s.up.mu.Unlock()
	h := &Handover{Written: time.Now(), FromVersion: s.opts.Version, Started: s.started, Reloads: s.reloads,
		Upgrades: upgrades, ControlFD: s.up.ctl.l.FD(), ResolverFD: -1, Extra: map[string]string{
			"control_path":    s.up.ctl.l.Spec.Address,
			"run_dir":         s.master.RunDir,         // pinned: the workers' sockets are in it
			"process_backend": s.master.ProcessBackend, // pinned: the one that adopts them
			"reason":          reason,
		}}
	h.SystemdFDs = s.systemdFDs()
	if s.up.res != nil {
		h.ResolverFD = s.up.res.l.FD()
		h.Extra["resolver_path"] = s.up.res.path
	}
	if t.tcpEndpoints {
		s.up.ctl.handOverTCP(h)
	}
	var (
		releases []func() // the frozen pools
		restore  func()   // the pump's pipes, given back before the pools run again
	)
	defer func() {
		if err == nil {
			return
		}
		if restore != nil {
			restore()
		}
		for _, r := range releases {
			r()
		}
	}()
	workers := 0
	for _, d := range s.sortedDaemons() {
		dh := DaemonHandover{Name: d.cfg.Name, Hash: d.cfg.Hash, NotifyPath: s.notifyPath(d.cfg.Name), Scale: d.scale}
		switch {
		case d.held:
			dh.Pending = pendingHeld
		case d.portWait != nil:
			dh.Pending = pendingPort
		}
		for _, l := range d.listeners {
			dh.Listeners = append(dh.Listeners, ListenerHandover{Spec: l.Spec, FD: l.FD()})
		}
		if d.pool != nil {
			fz, ok := d.pool.(freezer)
			if !ok {
				return fmt.Errorf("%w: daemon %s's pool cannot be handed over", ErrUpgradeRefused, d.cfg.Name)
			}
			ph, release, err := fz.Freeze(ctx)
			if err != nil {
				return fmt.Errorf("%w: daemon %s: %w", ErrUpgradeRefused, d.cfg.Name, err)
			}
			releases = append(releases, release)
			dh.Pool = &ph
			workers += len(ph.Workers)
		}
		h.Daemons = append(h.Daemons, dh)
	}
	var pipes map[int]prefork.WorkerPipes
	pipes, restore = hv.Export()
	for _, d := range h.Daemons {
		if d.Pool == nil {
			continue
		}
		for i := range d.Pool.Workers {
			w := &d.Pool.Workers[i]
			if p, ok := pipes[w.PID]; ok {
				w.Pipes = p
			}
		}
	}
	f, err := encodeHandover(h)
	if err != nil {
		return err
	}
	defer f.Close() // reached only if the exec failed
	fds := append(h.fds(), int(f.Fd()))
	if err := setInheritable(fds, true); err != nil {
		_ = setInheritable(fds, false)
		return fmt.Errorf("hand-over: %w", err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, HandoverEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, HandoverEnv+"="+strconv.Itoa(int(f.Fd())))
	argv := append([]string{binary}, os.Args[1:]...)
	if binary == "/proc/self/exe" {
		argv[0] = os.Args[0]
	}
	s.log.Info("upgrading: re-executing in place", "why", reason, "binary", binary, "from", s.opts.Version, "to", newVersion,
		"pid", os.Getpid(), "daemons", len(h.Daemons), "workers", workers)
	s.sdReloading()
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = s.sink.Flush(fctx)
	cancel()
	err = s.exec(binary, argv, env)
	_ = setInheritable(fds, false)
	s.sdReady()
	return fmt.Errorf("exec %s: %w", binary, err)
}

// exec is prefork.Exec, or Options.Exec in tests.
func (s *Supervisor) exec(path string, argv, env []string) error {
	if s.opts.Exec != nil {
		return s.opts.Exec(path, argv, env)
	}
	return prefork.Exec(path, argv, env)
}

// notifyPath is the notify socket of daemon name: where an earlier master
// of this process bound it, if it handed it over, else under run_dir.
func (s *Supervisor) notifyPath(name string) string {
	if p, ok := s.adoptedNotify[name]; ok {
		return p
	}
	return s.master.NotifyPath(name)
}

// upgradeStatus fills the upgrade fields of st.
func (s *Supervisor) upgradeStatus(st *Status) {
	s.up.mu.Lock()
	defer s.up.mu.Unlock()
	st.Upgrades, st.UpgradedFrom, st.UpgradeFailures, st.UpgradeError = s.up.upgrades, s.up.from, s.up.failures, s.up.lastErr
	st.UpgradeReason, st.PendingSettings = s.up.reason, s.up.pending
	if !s.up.upgradedAt.IsZero() {
		t := s.up.upgradedAt
		st.Upgraded = &t
	}
}

// UpgradeInfo is the upgrade part of a Status.
type UpgradeInfo struct {
	Upgrades        int        `json:"upgrades"`                 // in-place upgrades of this master (same pid)
	Upgraded        *time.Time `json:"upgraded,omitempty"`       // when the last one happened
	UpgradedFrom    string     `json:"upgraded_from,omitempty"`  // the version before it
	UpgradeFailures int        `json:"upgrade_failures"`         // upgrades whose exec failed after the preflight
	UpgradeError    string     `json:"upgrade_error,omitempty"`  // the last refused or failed upgrade
	UpgradeReason   string     `json:"upgrade_reason,omitempty"` // why the last one happened: an upgrade, or nsfd.ini changed
	// PendingSettings are nsfd.ini settings changed on disk that cannot
	// change while nsfd runs: setting → why.
	PendingSettings map[string]string `json:"pending_settings,omitempty"`
}
