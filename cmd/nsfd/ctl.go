package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/supervisor"
)

// ctlClient talks to a running master over its control socket.
type ctlClient struct {
	socket string
	http   *http.Client
}

func newCtlClient(etc string) (*ctlClient, error) {
	m, err := config.LoadMaster(etc)
	if err != nil {
		return nil, err
	}
	c := &ctlClient{socket: m.ControlSocket}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.socket)
		},
	}}
	return c, nil
}

// errUnreachable is wrapped when the master cannot be reached.
var errUnreachable = errors.New("cannot reach the master")

// errNotFound is wrapped when the master answers 404: no such daemon.
var errNotFound = errors.New("not found")

// call sends one request and decodes the JSON answer into out.
func (c *ctlClient) call(ctx context.Context, method, path string, q url.Values, out any) error {
	u := "http://nsfd" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s (is `nsfd run` running with this --etc?): %v", errUnreachable, c.socket, unwrapNet(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusNotFound {
				return fmt.Errorf("%s (%w)", e.Error, errNotFound)
			}
			return errors.New(e.Error)
		}
		return fmt.Errorf("master answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = body
		return nil
	}
	return json.Unmarshal(body, out)
}

// ctlExit gives the errors of the control socket their exit codes: the
// master not running 3, an unknown daemon 4.
func ctlExit(err error) error {
	switch {
	case errors.Is(err, errUnreachable):
		return &exitError{exitNotRunning, err}
	case errors.Is(err, errNotFound):
		return &exitError{exitNoDaemon, err}
	}
	return err
}

func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// ctl opens the control client of m's etc/ with a deadline.
func (m *Main) ctl(ctx context.Context) (*ctlClient, context.Context, context.CancelFunc, error) {
	c, err := newCtlClient(m.Etc)
	if err != nil {
		return nil, ctx, func() {}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	return c, ctx, cancel, nil
}

func newReloadCmd(m *Main) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "re-read etc/ and apply the difference (also SIGHUP, or any file change)",
		Long: `Re-read etc/ and apply the difference: new files start their daemons, removed
ones drain, changed ones roll their workers. The master also reloads by itself
when a file changes, and on SIGHUP. Exits 1 if a file does not load.`,
		Example: "  nsfd reload\n  nsfd reload --json",
		Args:    nargs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := m.ctl(cmd.Context())
			defer cancel()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(ctx, "POST", "/v1/reload", nil, &raw); err != nil {
				return ctlExit(err)
			}
			if asJSON {
				return m.writeJSON(raw)
			}
			var r supervisor.ReloadResult
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "reloaded: added %s, removed %s, resized %s, rolled %s\n",
				list(r.Added), list(r.Removed), list(r.Resized), list(r.Rolled))
			printMasterChange(m.Stdout, r.Master) // upgrade.go
			for file, e := range r.Errors {
				fmt.Fprintf(m.Stderr, "error: %s: %s\n", logging.Escape(file), logging.Escape(e))
			}
			if len(r.Errors) > 0 {
				return errConfigProblems
			}
			return nil
		},
	}
	jsonFlag(cmd.Flags(), &asJSON, "print the master's answer as JSON")
	return cmd
}

// waitFlags are --wait and --timeout of start, stop, restart and scale.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "wait until the change is complete (new workers ready, old ones gone)")
	cmd.Flags().DurationVar(&w.timeout, "timeout", time.Minute, "with --wait: give up after this long (exit 1)")
}

// daemonVerb is start, stop or restart.
func daemonVerb(m *Main, verb, short, long, done string) *cobra.Command {
	var (
		asJSON bool
		w      waitFlags
	)
	cmd := &cobra.Command{
		Use:               verb + " NAME",
		Short:             short,
		Long:              long,
		Example:           fmt.Sprintf("  nsfd %s echo\n  nsfd %s echo --wait --timeout 30s", verb, verb),
		Args:              nargs(1, 1),
		ValidArgsFunction: m.completeDaemons(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if w.timeout <= 0 {
				return usagef(cmd, "--timeout must be positive")
			}
			name := args[0]
			c, ctx, cancel, err := m.ctl(cmd.Context())
			defer cancel()
			if err != nil {
				return err
			}
			var before *supervisor.DaemonStatus
			if w.wait && verb == "restart" {
				if before, err = daemonStatus(ctx, c, name); err != nil {
					return ctlExit(err)
				}
			}
			var raw json.RawMessage
			if err := c.call(ctx, "POST", "/v1/daemons/"+url.PathEscape(name)+"/"+verb, nil, &raw); err != nil {
				return ctlExit(err)
			}
			if w.wait {
				return m.waitFor(cmd.Context(), c, name, w.timeout, doneWhen(verb, before))
			}
			if asJSON {
				return m.writeJSON(raw)
			}
			fmt.Fprintf(m.Stdout, "%s: %s (`nsfd status %s` shows it; --wait waits for it)\n", name, done, name)
			return nil
		},
	}
	jsonFlag(cmd.Flags(), &asJSON, "print the master's answer as JSON")
	w.add(cmd)
	return cmd
}

func newStartCmd(m *Main) *cobra.Command {
	return daemonVerb(m, "start", "start a daemon stopped with stop (or gone fatal)",
		"Start a daemon: bind its listeners and start its workers. A running daemon is\nleft alone; a fatal one starts again.",
		"start queued")
}

func newStopCmd(m *Main) *cobra.Command {
	return daemonVerb(m, "stop", "drain a daemon and close its listeners",
		"Stop a daemon: its workers drain (graceful_timeout) and its listeners close. It\nstays stopped across reloads until start or restart.",
		"stopped")
}

func newRestartCmd(m *Main) *cobra.Command {
	return daemonVerb(m, "restart", "roll a daemon's workers without dropping a connection",
		"Restart a daemon: new workers start first, the old ones are stopped once the\nnew ones are ready, so no connection is dropped. A stopped daemon starts.",
		"restart queued")
}

func newScaleCmd(m *Main) *cobra.Command {
	var (
		asJSON bool
		w      waitFlags
	)
	cmd := &cobra.Command{
		Use:   "scale NAME +N|-N|N",
		Short: "move a daemon's min_servers and max_servers together",
		Long: `Move a daemon's min_servers and max_servers together: by N (+N, -N), or to
min_servers N. max_servers stays at most ` + maxServersLimit + `. SIGTTIN and SIGTTOU to the
master scale every daemon by one.

The scale is kept across reloads, stop and start, and upgrades, until the
daemon's file changes min_servers or max_servers: then the file wins (the log
says so). nsfd status shows it as "scaled from the file's MIN/MAX".

0 stops the daemon's workers and keeps it configured, registered (not
resolvable) and its listeners bound: clients wait in the listen backlog, and a
connection starts nothing (unlike an on-demand daemon). scale NAME N, or start
(back to the sizes it had before), brings it back.`,
		Example:           "  nsfd scale echo +2\n  nsfd scale echo -1\n  nsfd scale echo 4 --wait\n  nsfd scale echo 0 --wait",
		Args:              nargs(2, 2),
		ValidArgsFunction: m.completeDaemons(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := supervisor.ParseScale(args[1]); err != nil {
				return usagef(cmd, "%v", err)
			}
			if w.timeout <= 0 {
				return usagef(cmd, "--timeout must be positive")
			}
			c, ctx, cancel, err := m.ctl(cmd.Context())
			defer cancel()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			q := url.Values{"n": {args[1]}}
			if err := c.call(ctx, "POST", "/v1/daemons/"+url.PathEscape(args[0])+"/scale", q, &raw); err != nil {
				return ctlExit(err)
			}
			if asJSON && !w.wait {
				return m.writeJSON(raw)
			}
			var r struct {
				Policy struct {
					Min int `json:"min_servers"`
					Max int `json:"max_servers"`
				} `json:"policy"`
			}
			json.Unmarshal(raw, &r)
			fmt.Fprintf(m.Stdout, "%s: min_servers %d, max_servers %d\n", args[0], r.Policy.Min, r.Policy.Max)
			if w.wait {
				if r.Policy.Max == 0 { // scaled to 0
					return m.waitFor(cmd.Context(), c, args[0], w.timeout, doneWhen("stop", nil))
				}
				return m.waitFor(cmd.Context(), c, args[0], w.timeout, func(d *supervisor.DaemonStatus) bool {
					return d.State == "running" && len(d.Workers) >= r.Policy.Min && len(d.Workers) <= r.Policy.Max
				})
			}
			return nil
		},
	}
	jsonFlag(cmd.Flags(), &asJSON, "print the master's answer as JSON")
	w.add(cmd)
	return cmd
}

// daemonStatus is one daemon's status.
func daemonStatus(ctx context.Context, c *ctlClient, name string) (*supervisor.DaemonStatus, error) {
	var st supervisor.Status
	if err := c.call(ctx, "GET", "/v1/status", url.Values{"name": {name}}, &st); err != nil {
		return nil, err
	}
	for i := range st.Daemons {
		if st.Daemons[i].Name == name {
			return &st.Daemons[i], nil
		}
	}
	return nil, fmt.Errorf("status %s: %w", name, errNotFound)
}

// doneWhen is when verb is complete: started (running), stopped, or
// restarted (running, none of before's workers left).
func doneWhen(verb string, before *supervisor.DaemonStatus) func(*supervisor.DaemonStatus) bool {
	switch verb {
	case "stop":
		return func(d *supervisor.DaemonStatus) bool { return d.State == "stopped" && len(d.Workers) == 0 }
	case "restart":
		old := map[int]bool{}
		if before != nil {
			for _, w := range before.Workers {
				old[w.PID] = true
			}
		}
		return func(d *supervisor.DaemonStatus) bool {
			if d.State != "running" || len(d.Workers) == 0 {
				return false
			}
			for _, w := range d.Workers {
				if old[w.PID] {
					return false
				}
			}
			return true
		}
	}
	return func(d *supervisor.DaemonStatus) bool { return d.State == "running" }
}

// waitPoll is how often --wait asks the master.
const waitPoll = 100 * time.Millisecond

// waitFor polls name's status until done says so, the daemon goes fatal
// (exit 3, with the reason) or timeout passes (exit 1). On a terminal it
// prints each new state on stderr.
func (m *Main) waitFor(ctx context.Context, c *ctlClient, name string, timeout time.Duration, done func(*supervisor.DaemonStatus) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	progress := isTerminal(m.Stdout)
	last := ""
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	for {
		d, err := daemonStatus(ctx, c, name)
		if err != nil && ctx.Err() == nil {
			return ctlExit(err)
		}
		if d != nil {
			if progress && d.State != last {
				fmt.Fprintf(m.Stderr, "%s: %s, %d worker(s)\n", name, d.State, len(d.Workers))
			}
			last = d.State
			if done(d) {
				fmt.Fprintf(m.Stdout, "%s: %s\n", name, d.State)
				return nil
			}
			if d.State == "fatal" {
				return &exitError{exitNotRunning, fmt.Errorf("%s: fatal: %s", name, cell(reasonOf(m, d)))}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not done after %s (state %s)", name, timeout, last)
		case <-tick.C:
		}
	}
}

// isTerminal says whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// errConfigProblems makes `status` and `reload` exit 1 when a file fails to load.
var errConfigProblems = errors.New("configuration has errors (see above)")

// writeJSON prints an answer of the master's for --json: escaped as JSON
// (the same value), so that nothing in it acts on a terminal, whoever
// answered on the socket.
func (m *Main) writeJSON(raw []byte) error {
	_, err := m.Stdout.Write(logging.JSONEscape(raw))
	return err
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return logging.Escape(strings.Join(s, " "))
}
