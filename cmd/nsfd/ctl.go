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
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

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

func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// ctlVerb runs status, reload, start, stop, restart and scale.
func (m *Main) ctlVerb(ctx context.Context, verb, etc string, args []string) error {
	fs := m.flags(verb, &etc)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	args = fs.Args()
	want := map[string][2]int{"status": {0, 1}, "reload": {0, 0}, "start": {1, 1}, "stop": {1, 1}, "restart": {1, 1}, "scale": {2, 2}}[verb]
	if len(args) < want[0] || len(args) > want[1] {
		use := map[string]string{"status": "status [NAME]", "reload": "reload", "scale": "scale NAME +N|-N|N (max_servers at most " + maxServersLimit + ")"}[verb]
		if use == "" {
			use = verb + " NAME"
		}
		return &usageError{"usage: nsfd " + use}
	}
	c, err := newCtlClient(etc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var raw json.RawMessage
	switch verb {
	case "status":
		q := url.Values{}
		if len(args) == 1 {
			q.Set("name", args[0])
		}
		if err := c.call(ctx, "GET", "/v1/status", q, &raw); err != nil {
			return err
		}
		if *asJSON {
			return m.writeJSON(raw)
		}
		var st supervisor.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		printStatus(m.Stdout, st)
		bad := len(st.Errors) > 0 || st.ConfigError != ""
		for _, d := range st.Daemons {
			bad = bad || d.ConfigError != ""
		}
		if bad {
			return errConfigProblems
		}
		return nil
	case "reload":
		if err := c.call(ctx, "POST", "/v1/reload", nil, &raw); err != nil {
			return err
		}
		if *asJSON {
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
	case "scale":
		if _, _, err := supervisor.ParseScale(args[1]); err != nil {
			return &usageError{err.Error()}
		}
		q := url.Values{"n": {args[1]}}
		if err := c.call(ctx, "POST", "/v1/daemons/"+url.PathEscape(args[0])+"/scale", q, &raw); err != nil {
			return err
		}
		if *asJSON {
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
		return nil
	default: // start, stop, restart
		if err := c.call(ctx, "POST", "/v1/daemons/"+url.PathEscape(args[0])+"/"+verb, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return m.writeJSON(raw)
		}
		fmt.Fprintf(m.Stdout, "%s: %s\n", args[0], map[string]string{"start": "started", "stop": "stopped", "restart": "restarting"}[verb])
		return nil
	}
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

// printStatus prints st as text. Every text in it may come from a worker
// (STATUS=), a file name or a file's content: each cell is escaped here, on
// its way to the terminal, and nothing else is printed.
func printStatus(w io.Writer, st supervisor.Status) {
	e := cell
	fmt.Fprintf(w, "nsfd %s pid %d on %s, up %s, %d reload(s), etc %s\n",
		e(st.Version), st.PID, e(st.Node), since(st.Started), st.Reloads, e(st.Etc))
	printUpgrade(w, st) // upgrade.go
	if st.ConfigError != "" {
		fmt.Fprintf(w, "config error: %s\n", e(st.ConfigError))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range st.Daemons {
		fmt.Fprintf(tw, "\n%s\t%s\t%s\trequests %d\trestarts %d\n", e(d.Name), e(d.State), e(strings.Join(d.Listeners, ", ")), d.Requests, d.Restarts)
		if d.ConfigError != "" {
			fmt.Fprintf(tw, "  config error: %s\n", e(d.ConfigError))
		}
		if len(d.Workers) > 0 {
			fmt.Fprintf(tw, "  PID\tSLOT\tSTATE\tREQUESTS\tUPTIME\tSTATUS\n")
		}
		for _, wk := range d.Workers {
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%d\t%s\t%s\n", wk.PID, wk.Slot, e(wk.State), wk.Requests, since(wk.Started), clip(e(wk.Status), maxStatusText))
		}
	}
	tw.Flush()
	for _, fe := range st.Errors {
		fmt.Fprintf(w, "\nerror: %s\n", e(fe.Error))
	}
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}
