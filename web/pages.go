package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/supervisor"
)

// logLines is how many of a daemon's last log lines its page shows.
const logLines = 50

// row is a daemon of the overview.
type row struct {
	supervisor.DaemonStatus
	Busy, Idle, Total int
	Rate              float64 // requests per second; -1: not known yet
}

// overviewData is what the overview renders.
type overviewData struct {
	Status supervisor.Status
	Rows   []row
	Fleet  bool
	Token  string
	Err    string
}

// daemonData is what a daemon's page renders.
type daemonData struct {
	Daemon  row
	Config  []supervisor.ConfigItem
	Log     []string
	LogNote string // why there are no log lines
	Token   string
	Fleet   bool
	Node    string
	CanAct  bool
	Err     string
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String()
	},
	"rate": func(r float64) string {
		if r < 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", r)
	},
	"join": strings.Join,
	"cpu": func(r *prefork.GroupStats) string {
		if r == nil {
			return "–"
		}
		return time.Duration(r.CPUSeconds * float64(time.Second)).Round(10 * time.Millisecond).String()
	},
	"mem": func(r *prefork.GroupStats) string {
		if r == nil {
			return "–"
		}
		return size(r.MemoryBytes)
	},
	"size":  size,
	"since": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"page": func(title string, fleet bool) map[string]any {
		return map[string]any{"Title": title, "Fleet": fleet}
	},
	"actions": func(name, state, token string) map[string]string {
		return map[string]string{"Name": name, "State": state, "Token": token}
	},
}

// size renders a byte count in KiB, MiB or GiB.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// render writes the template name with data, or the fragment name#live
// for a refresh (?part=live).
func (s *server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	if r.URL.Query().Get("part") == "live" {
		name += "#live"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.opts.Log.Error("render", "page", name, "error", err)
	}
}

// status asks the API for the status of every daemon, or of one.
func (s *server) status(ctx context.Context, name string) (supervisor.Status, error) {
	var st supervisor.Status
	var q url.Values
	if name != "" {
		q = url.Values{"name": {name}}
	}
	err := s.api.call(ctx, http.MethodGet, "/v1/status", q, &st)
	return st, err
}

// rowOf is the overview's row of d.
func (s *server) rowOf(d supervisor.DaemonStatus, now time.Time) row {
	r := row{DaemonStatus: d, Total: len(d.Workers)}
	for _, w := range d.Workers {
		switch w.State {
		case "busy":
			r.Busy++
		case "idle":
			r.Idle++
		}
	}
	r.Rate = s.rates.rate(d.Name, d.Requests, now)
	return r
}

func (s *server) overview(w http.ResponseWriter, r *http.Request) {
	data := overviewData{Token: s.token(r), Fleet: s.opts.Fleet != nil}
	st, err := s.status(r.Context(), "")
	if err != nil {
		data.Err = err.Error()
	}
	data.Status = st
	now := time.Now()
	for _, d := range st.Daemons {
		data.Rows = append(data.Rows, s.rowOf(d, now))
	}
	s.render(w, r, "overview.html", data)
}

func (s *server) daemon(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st, err := s.status(r.Context(), name)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == http.StatusNotFound {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	data := daemonData{Token: s.token(r), Fleet: s.opts.Fleet != nil, Node: st.Node, CanAct: s.may(r, "restart")}
	if err != nil {
		data.Err = err.Error()
	}
	if len(st.Daemons) == 1 {
		data.Daemon = s.rowOf(st.Daemons[0], time.Now())
	}
	if r.URL.Query().Get("part") != "live" {
		if err := s.api.call(r.Context(), http.MethodGet, "/v1/daemons/"+url.PathEscape(name)+"/config", nil, &data.Config); err != nil && data.Err == "" {
			data.Err = err.Error()
		}
		data.Log, data.LogNote = s.lastLines(r.Context(), name)
	}
	s.render(w, r, "daemon.html", data)
}

// lastLines returns the last lines of the central log about daemon, or
// why there are none.
func (s *server) lastLines(ctx context.Context, daemon string) ([]string, string) {
	if s.opts.LogFile == "" {
		return nil, "the central log does not go to a file: see syslog"
	}
	var out []string
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := logging.Tail(ctx, s.opts.LogFile, logging.FollowOptions{Lines: logLines, Daemon: daemon},
		func(line []byte, _ logging.Record) error {
			out = append(out, string(logging.AppendEscaped(nil, line)))
			return nil
		})
	if err != nil {
		return out, "cannot read the central log: " + err.Error()
	}
	return out, ""
}

func (s *server) fleet(w http.ResponseWriter, r *http.Request) {
	if s.opts.Fleet == nil {
		http.Error(w, "no fleet: the registry is not shared (type = postgres)", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	nodes, err := s.opts.Fleet(ctx)
	data := struct {
		Nodes []FleetNode
		Err   string
		Fleet bool
	}{Nodes: nodes, Fleet: true}
	if err != nil {
		data.Err = err.Error()
	}
	s.render(w, r, "fleet.html", data)
}
