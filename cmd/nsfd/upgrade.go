package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/supervisor"
	"github.com/nsfd/nsfd/worker"
)

// The master forks its workers and re-executes itself (nsfd upgrade) on the
// main thread, which survives execve: a worker's parent-death signal fires
// when the thread that forked it exits (see prefork.ServeMainThread).
func init() { runtime.LockOSThread() }

// HandoverMax, when set at build time (-ldflags "-X
// main.HandoverMax=1"), is the newest hand-over version this binary claims
// to read in its preflight: a way to build a binary an older master must
// refuse, for tests. Empty: supervisor.HandoverVersion.
var HandoverMax = ""

// upgradeWait bounds how long `nsfd upgrade` waits for the new master to
// answer after the exec.
const upgradeWait = time.Minute

func newUpgradeCmd(m *Main) *cobra.Command {
	var binary string
	cmd := &cobra.Command{
		Use:   "upgrade [--binary PATH]",
		Short: "re-execute nsfd (or PATH) in place of the master: same pid, workers and listeners (also SIGUSR2)",
		Long: `Re-execute the master in place: the binary it was started from (replaced on
disk, say by a package upgrade), or PATH. The master first runs the new binary
in a preflight (it must run here, read etc/ and the hand-over format); then it
hands its state over in a memfd and calls execve: same pid, every worker,
listener and socket kept, no connection dropped. Only root or the master's own
user may upgrade, to a binary no other user can write. docs/upgrade.md.`,
		Example: "  nsfd upgrade\n  nsfd upgrade --binary /usr/local/bin/nsfd.new",
		Args:    nargs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return ctlExit(m.upgrade(cmd.Context(), m.Etc, binary))
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "the binary to run (default: the path the master was started from)")
	return cmd
}

// newPreflightCmd is the hidden verb an upgrading master runs the new
// binary with (supervisor.PreflightArg).
func newPreflightCmd(m *Main) *cobra.Command {
	var hv bool
	cmd := &cobra.Command{
		Use:    supervisor.PreflightArg,
		Hidden: true,
		Args:   nargs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return m.upgradePreflight(m.Etc)
		},
	}
	cmd.Flags().BoolVar(&hv, "handover-version", true, "print the hand-over versions this binary reads")
	return cmd
}

// upgrade asks the master to re-execute itself in place, then waits for
// the new binary's master to answer and prints what changed.
func (m *Main) upgrade(ctx context.Context, etc, binary string) error {
	c, err := newCtlClient(etc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, upgradeWait)
	defer cancel()
	var before supervisor.Status
	if err := c.call(ctx, "GET", "/v1/status", nil, &before); err != nil {
		return err
	}
	q := url.Values{}
	if binary != "" {
		abs, err := filepath.Abs(binary)
		if err != nil {
			return err
		}
		q.Set("binary", abs)
	}
	err = c.call(ctx, "POST", "/v1/upgrade", q, nil)
	if err != nil && !errors.Is(err, errUnreachable) {
		return err // refused, or the exec failed: the master runs on
	}
	// The connection closed with the exec: wait for the new master.
	after, err := waitUpgraded(ctx, c, before)
	if err != nil {
		return err
	}
	if after.PID != before.PID {
		return fmt.Errorf("the master's pid changed from %d to %d: it restarted instead of upgrading", before.PID, after.PID)
	}
	fmt.Fprintf(m.Stdout, "upgraded in place: pid %d, nsfd %s -> %s\n", after.PID, cell(before.Version), cell(after.Version))
	return nil
}

// waitUpgraded polls the master's status until it reports more upgrades
// or more failures than before, or ctx ends.
func waitUpgraded(ctx context.Context, c *ctlClient, before supervisor.Status) (supervisor.Status, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var st supervisor.Status
		err := c.call(ctx, "GET", "/v1/status", nil, &st)
		switch {
		case err == nil && st.Upgrades > before.Upgrades:
			return st, nil
		case err == nil && st.UpgradeFailures > before.UpgradeFailures:
			return st, fmt.Errorf("upgrade failed: %s", st.UpgradeError)
		case err != nil && !errors.Is(err, errUnreachable):
			return st, err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return st, fmt.Errorf("the master did not come back from the upgrade: %w (last: %v)", ctx.Err(), err)
		}
	}
}

// upgradePreflight is the hidden verb an upgrading master runs this binary
// with: it proves the binary runs here, loads etc/ as the new master will,
// and says which hand-over versions it reads.
func (m *Main) upgradePreflight(etc string) error {
	if _, err := config.LoadMaster(etc); err != nil {
		return err
	}
	maxV := supervisor.HandoverVersion
	if HandoverMax != "" {
		v, err := strconv.Atoi(HandoverMax)
		if err != nil {
			return fmt.Errorf("HandoverMax %q: %w", HandoverMax, err)
		}
		maxV = v
	}
	fmt.Fprintln(m.Stdout, supervisor.PreflightLine(version(), supervisor.MinHandoverVersion, maxV))
	return nil
}

// printUpgrade prints the status line about upgrades, if there is one.
func printUpgrade(w io.Writer, st supervisor.Status) {
	if st.Upgraded != nil {
		fmt.Fprintf(w, "upgraded in place %s ago from %s (%d upgrade(s)): %s\n", since(*st.Upgraded), cell(st.UpgradedFrom), st.Upgrades, cell(st.UpgradeReason))
	}
	if st.UpgradeError != "" {
		fmt.Fprintf(w, "last upgrade failed: %s\n", cell(st.UpgradeError))
	}
	printPending(w, st.PendingSettings)
}

// printMasterChange prints what a reload does with changed nsfd.ini settings.
func printMasterChange(w io.Writer, c *supervisor.MasterChange) {
	if c == nil {
		return
	}
	if len(c.Applying) > 0 {
		fmt.Fprintf(w, "nsfd.ini: applying %s by re-executing nsfd in place (same pid, workers kept)\n", list(c.Applying))
	}
	for _, n := range c.Notes {
		fmt.Fprintf(w, "  note: %s\n", cell(n))
	}
	printPending(w, c.Pending)
}

// printPending prints the nsfd.ini settings that cannot change live.
func printPending(w io.Writer, pending map[string]string) {
	keys := make([]string, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "nsfd.ini: %s changed but not applied: %s\n", cell(k), cell(pending[k]))
	}
}

// systemdSockets returns the fds of the sockets systemd handed nsfd itself
// (LISTEN_FDS, for its own pid), and takes those variables out of the
// environment so that no worker sees them.
func systemdSockets() []int {
	files, err := worker.Files() // sd_listen_fds(3), as workers do
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsfd: LISTEN_FDS:", err)
		return nil
	}
	var fds []int
	for _, f := range files {
		// A plain fd the master keeps for good: an *os.File's finalizer
		// would close it.
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "nsfd: LISTEN_FDS:", err)
			continue
		}
		fds = append(fds, fd)
	}
	return fds
}
