package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/supervisor"
)

// stateFailed is the state `nsfd status` gives a daemon whose file failed
// to load or to start (a bind error): it has no pool.
const stateFailed = "failed"

func newStatusCmd(m *Main) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "daemons, their state and why, listeners, workers, config errors",
		Long: `Show the master and its daemons: each daemon's state, how long it has been in
it, the reason (last unplanned exit, the exec error, the config or bind error),
workers, min/max, restarts and real listener addresses. Files that failed to
load are listed as daemons in state "failed".

Exit status: 0 when the daemon named is running (without NAME: nothing failed),
1 when a file has a config error, 3 when the daemon named is not running (or
the master is not), 4 when there is no daemon of that name. --json prints the
schema documented in docs/status.md.`,
		Example:           "  nsfd status\n  nsfd status echo\n  nsfd status echo --json",
		Args:              nargs(0, 1),
		ValidArgsFunction: m.completeDaemons(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return m.status(cmd.Context(), name, asJSON)
		},
	}
	jsonFlag(cmd.Flags(), &asJSON, "print the status as JSON (docs/status.md)")
	return cmd
}

func (m *Main) status(ctx context.Context, name string, asJSON bool) error {
	c, ctx, cancel, err := m.ctl(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var raw json.RawMessage
	err = c.call(ctx, "GET", "/v1/status", q, &raw)
	if errors.Is(err, errNotFound) {
		// No such daemon running: perhaps its file failed to load or bind.
		return m.failedStatus(ctx, c, name, asJSON, err)
	}
	if err != nil {
		return ctlExit(err)
	}
	var st supervisor.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if name != "" {
		st.Errors = nil // the other files'
	}
	if asJSON {
		if err := m.writeJSON(raw); err != nil {
			return err
		}
	} else {
		m.augment(&st)
		printStatus(m.Stdout, st)
	}
	return statusExit(st, name)
}

// statusExit is the exit of status: with a name, 3 if that daemon is not
// running; then 1 on config errors; without a name, 3 if a daemon is fatal.
func statusExit(st supervisor.Status, name string) error {
	for _, d := range st.Daemons {
		if name != "" && d.State != "running" {
			return &exitError{code: exitNotRunning}
		}
	}
	bad := len(st.Errors) > 0 || st.ConfigError != ""
	for _, d := range st.Daemons {
		bad = bad || d.ConfigError != ""
	}
	if bad {
		return errConfigProblems
	}
	for _, d := range st.Daemons {
		if d.State == "fatal" {
			return &exitError{code: exitNotRunning}
		}
	}
	return nil
}

// failedStatus shows name as a failed daemon if a file of that name failed
// to load or start; else the master's "no such daemon" (exit 4).
func (m *Main) failedStatus(ctx context.Context, c *ctlClient, name string, asJSON bool, notFound error) error {
	var st supervisor.Status
	if err := c.call(ctx, "GET", "/v1/status", nil, &st); err != nil {
		return ctlExit(err)
	}
	for _, fe := range st.Errors {
		if daemonOfFile(fe.File) != name {
			continue
		}
		st.Daemons = []supervisor.DaemonStatus{{Name: name, File: fe.File, State: stateFailed, ConfigError: fe.Error,
			Listeners: []string{}, Workers: nil}}
		st.Errors = []supervisor.FileError{}
		if asJSON {
			b, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				return err
			}
			if err := m.writeJSON(append(b, '\n')); err != nil {
				return err
			}
		} else {
			printStatus(m.Stdout, st)
		}
		return &exitError{code: exitNotRunning}
	}
	return &exitError{exitNoDaemon, notFound}
}

// daemonOfFile is the daemon name a file gives by default: its base name
// without the extension.
func daemonOfFile(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// augment turns st's file errors into failed daemons and, for a daemon
// that cannot start its workers, finds their last error in the central log
// (the exec error a worker printed before it exited).
func (m *Main) augment(st *supervisor.Status) {
	var rest []supervisor.FileError
	for _, fe := range st.Errors {
		name := daemonOfFile(fe.File)
		if name == "nsfd" || name == "" {
			rest = append(rest, fe)
			continue
		}
		st.Daemons = append(st.Daemons, supervisor.DaemonStatus{Name: name, File: fe.File, State: stateFailed, ConfigError: fe.Error})
	}
	st.Errors = rest
	for i := range st.Daemons {
		d := &st.Daemons[i]
		if d.State == "fatal" || d.State == "backoff" {
			if line := m.lastWorkerError(d.Name); line != "" {
				d.LastExit = strings.TrimSpace(d.LastExit + " (" + line + ")")
			}
		}
	}
}

// lastWorkerError is the last line a worker of name wrote on stderr, from
// the central log if it is a file; "" if there is none.
func (m *Main) lastWorkerError(name string) string {
	mc, err := config.LoadMaster(m.Etc)
	if err != nil || mc.Log.Target != logging.TargetFile {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	last := ""
	logging.Tail(ctx, mc.Log.File, logging.FollowOptions{Lines: 1, Daemon: name,
		Match: func(r logging.Record) bool { return r.Stream == "stderr" }},
		func(_ []byte, rec logging.Record) error {
			last = rec.Message
			return nil
		})
	return last
}

// reasonOf is why d is in its state, as status prints it.
func reasonOf(m *Main, d *supervisor.DaemonStatus) string {
	if d.State == "waiting" {
		return d.Reason
	}
	if d.State == "fatal" || d.State == "backoff" {
		why := d.LastExit
		if line := m.lastWorkerError(d.Name); line != "" {
			why = strings.TrimSpace(why + " (" + line + ")")
		}
		if d.Reason != "" { // when fatal_retry tries again
			why = strings.TrimSpace(why + "; " + d.Reason)
		}
		if why != "" {
			return why
		}
	}
	if d.ConfigError != "" {
		return d.ConfigError
	}
	return d.LastExit
}

// maxStatusText is how much of a worker's STATUS= text `nsfd status`
// prints, escaped; --json has all of it.
const maxStatusText = 120

// cell is text for the status table: escaped (logging.Escape), tabs too,
// so that it can neither act on the terminal nor make a column of its own.
func cell(s string) string {
	return strings.ReplaceAll(logging.Escape(s), "\t", `\t`)
}

// clip cuts s to at most n bytes, on a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// printStatus prints st as text: a line on the master, a table of the
// daemons (stable columns: DAEMON STATE FOR WORKERS MIN/MAX RESTARTS
// REQUESTS LISTENERS), a reason line under a daemon that has one, then each
// daemon's workers. Every text in it may come from a worker (STATUS=), a
// file name or a file's content: each cell is escaped here, on its way to
// the terminal, and nothing else is printed.
func printStatus(w io.Writer, st supervisor.Status) {
	e := cell
	fmt.Fprintf(w, "nsfd %s pid %d on %s, up %s, %d reload(s), etc %s\n",
		e(st.Version), st.PID, e(st.Node), since(st.Started), st.Reloads, e(st.Etc))
	printUpgrade(w, st) // upgrade.go
	if st.ConfigError != "" {
		fmt.Fprintf(w, "config error: %s\n", e(st.ConfigError))
	}
	if st.Containment != "" {
		fmt.Fprintf(w, "containment: %s\n", e(st.Containment))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(st.Daemons) > 0 {
		fmt.Fprintf(tw, "\nDAEMON\tSTATE\tFOR\tWORKERS\tMIN/MAX\tRESTARTS\tREQUESTS\tLISTENERS\n")
	}
	for _, d := range st.Daemons {
		minmax := "-"
		if d.Policy.MaxServers > 0 || d.ScaledFrom != nil {
			minmax = fmt.Sprintf("%d/%d", d.Policy.MinServers, d.Policy.MaxServers)
		}
		listeners := strings.Join(d.Listeners, ", ")
		if listeners == "" {
			listeners = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", e(d.Name), e(d.State), since(d.Since), len(d.Workers),
			minmax, d.Restarts, d.Requests, e(listeners))
		if d.ConfigError != "" {
			fmt.Fprintf(tw, "  config error: %s\n", e(d.ConfigError))
		}
		if d.Saturated {
			fmt.Fprintf(tw, "  saturated: all %d workers busy at max_servers; new connections wait in the backlog\n", len(d.Workers))
		}
		if f := d.ScaledFrom; f != nil {
			fmt.Fprintf(tw, "  scaled from the file's %d/%d to %d/%d (nsfd scale; kept until the file changes min_servers or max_servers)\n",
				f.MinServers, f.MaxServers, d.Policy.MinServers, d.Policy.MaxServers)
		}
		if h := d.Health; h != nil && !h.Healthy {
			fmt.Fprintf(tw, "  %s\n", clip(e(h.Reason), 4*maxStatusText))
		}
		switch {
		case (d.State == "waiting" || d.State == "stopped") && d.Reason != "":
			fmt.Fprintf(tw, "  reason: %s\n", clip(e(d.Reason), 4*maxStatusText))
		case d.LastExit != "" && d.State != "running" && d.State != "stopped":
			why := d.LastExit
			if d.Reason != "" {
				why += "; " + d.Reason
			}
			fmt.Fprintf(tw, "  reason: %s\n", clip(e(why), 4*maxStatusText))
		case d.LastExit != "":
			fmt.Fprintf(tw, "  last exit: %s\n", clip(e(d.LastExit), 4*maxStatusText))
		}
		if r := d.Resources; r != nil {
			fmt.Fprintf(tw, "  cpu %s, memory %s (peak %s), processes %d, oom kills %d, max_rss recycles %d\n",
				cpuTime(r.CPUSeconds), sizeText(r.MemoryBytes), sizeText(r.MemoryPeak), r.Procs, d.OOMKills, d.RSSRecycles)
		}
	}
	tw.Flush()
	for _, d := range st.Daemons {
		if len(d.Workers) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\n%s\tPID\tSLOT\tSTATE\tREQUESTS\tUPTIME\tCPU\tMEMORY\tPROCS\tSTATUS\n", e(d.Name))
		for _, wk := range d.Workers {
			cpu, mem, procs := "-", "-", "-"
			if r := wk.Resources; r != nil {
				cpu, mem, procs = cpuTime(r.CPUSeconds), sizeText(r.MemoryBytes), strconv.Itoa(r.Procs)
			}
			fmt.Fprintf(tw, "\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", wk.PID, wk.Slot, e(wk.State), wk.Requests, since(wk.Started),
				cpu, mem, procs, clip(e(wk.Status), maxStatusText))
		}
		tw.Flush()
	}
	for _, fe := range st.Errors {
		fmt.Fprintf(w, "\nerror: %s\n", e(fe.Error))
	}
}

// cpuTime renders CPU seconds: 1.25s, 2m3s.
func cpuTime(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(10 * time.Millisecond).String()
}

// sizeText renders a byte count in MiB with one decimal, or KiB below 1 MiB.
func sizeText(n int64) string {
	if n < 1<<20 {
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}
