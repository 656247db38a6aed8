package supervisor

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/nsfd/nsfd/prefork"
)

// DaemonStatus is one daemon in a Status.
type DaemonStatus struct {
	Name        string                 `json:"name"`
	File        string                 `json:"file"`
	State       string                 `json:"state"`                  // starting, running, backoff, fatal, stopping, stopped
	ConfigError string                 `json:"config_error,omitempty"` // its file fails to load; it runs on its last good config
	Listeners   []string               `json:"listeners"`              // "tcp 127.0.0.1:7001": real addresses
	Workers     []prefork.WorkerStatus `json:"workers"`
	Policy      prefork.PolicyOptions  `json:"policy"`
	Spawns      int                    `json:"spawns"`
	Restarts    int                    `json:"restarts"`
	Requests    int                    `json:"requests"`
	Malformed   int                    `json:"notify_malformed"`
	OOMKills    int                    `json:"oom_kills"`           // workers killed by the kernel's OOM killer
	RSSRecycles int                    `json:"rss_recycles"`        // workers replaced for max_rss
	Saturated   bool                   `json:"saturated"`           // max_servers workers, all busy: connections wait in the backlog
	Resources   *prefork.GroupStats    `json:"resources,omitempty"` // CPU, memory, processes: the daemon's control group, else its workers'
	Since       time.Time              `json:"since"`
	LastExit    string                 `json:"last_exit,omitempty"` // its last worker exit that was not planned: "crashed: exit status 1"
	// Reason says why the daemon is not running: what it waits for
	// (state waiting), or when it tries again (state fatal); or, running,
	// that it is unhealthy (Health.Reason).
	Reason    string        `json:"reason,omitempty"`
	NextRetry *time.Time    `json:"next_retry,omitempty"` // fatal: when fatal_retry starts it again; waiting for an address: the next try
	Health    *HealthStatus `json:"health,omitempty"`     // its health check, if it has one (health.go)
	// ScaledFrom is the file's min_servers and max_servers when `nsfd
	// scale` moved the daemon away from them (Policy has the scaled ones).
	ScaledFrom *ScaledFrom `json:"scaled_from,omitempty"`
}

// FileError is a daemon file that fails to load and has no running daemon.
type FileError struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

// Status is what `nsfd status` shows.
type Status struct {
	Node        string         `json:"node"`
	PID         int            `json:"pid"`
	Etc         string         `json:"etc"`
	Version     string         `json:"version"`
	Started     time.Time      `json:"started"`
	Reloads     int            `json:"reloads"`
	LogDropped  uint64         `json:"log_dropped"`
	Containment string         `json:"containment"`            // the control groups' layout, or why containment is degraded
	ConfigError string         `json:"config_error,omitempty"` // nsfd.ini fails to load: nothing changes until it does
	Daemons     []DaemonStatus `json:"daemons"`
	Errors      []FileError    `json:"errors"`

	UpgradeInfo // upgrade.go
}

// Status returns a snapshot of the master and of its daemons (or of one
// daemon, when name is set).
func (s *Supervisor) Status(ctx context.Context, name string) (Status, error) {
	return s.status(ctx, name, false)
}

// status is Status; brief leaves out the accounting of the daemons and
// their workers (Resources), which is files to read for every worker.
func (s *Supervisor) status(ctx context.Context, name string, brief bool) (Status, error) {
	type entry struct {
		st       DaemonStatus
		pool     Pool
		draining bool
	}
	var (
		entries []entry
		out     = Status{Node: s.master.NodeName, PID: os.Getpid(), Etc: s.master.Dir, Version: s.opts.Version}
		missing bool
	)
	err := s.do(ctx, func(context.Context) {
		out.Reloads, out.Started = s.reloads, s.started // adopt sets started
		if s.masterErr != nil {
			out.ConfigError = s.masterErr.Error()
		}
		for file, err := range s.errs {
			out.Errors = append(out.Errors, FileError{File: file, Error: err.Error()})
		}
		for _, d := range s.sortedDaemons() {
			if name != "" && d.cfg.Name != name {
				continue
			}
			e := entry{st: DaemonStatus{Name: d.cfg.Name, File: d.cfg.File, State: prefork.PoolStopped.String(), Policy: policyOf(d.cfg)}}
			if d.configErr != nil {
				e.st.ConfigError = d.configErr.Error()
			}
			for _, l := range d.listeners {
				e.st.Listeners = append(e.st.Listeners, l.String())
			}
			if d.pool != nil {
				e.pool, e.draining = d.pool, d.draining
			}
			if d.held {
				e.st.State, e.st.Reason = "waiting", "waiting for "+d.waiting
			}
			if !d.retryAt.IsZero() {
				at := d.retryAt
				e.st.NextRetry = &at
				e.st.Reason = "fatal_retry at " + at.Format(time.RFC3339)
			}
			if e.st.ScaledFrom = scaledFrom(d); e.st.ScaledFrom != nil {
				if p, err := scaledPolicy(e.st.Policy, d.scale); err == nil {
					e.st.Policy = p // stopped: what it starts at
				}
			}
			if d.scale != nil && !d.draining && d.pool == nil && d.zero() {
				e.st.Policy.MinServers, e.st.Policy.MaxServers = 0, 0
				e.st.Reason = fmt.Sprintf("scaled to 0: `nsfd scale %s N` or `nsfd start %s` starts it again", d.cfg.Name, d.cfg.Name)
			}
			if pw := d.portWait; pw != nil {
				at := pw.next
				e.st.State, e.st.Reason, e.st.NextRetry, e.st.Since = "waiting", pw.reason(time.Now()), &at, pw.since
			}
			entries = append(entries, e)
		}
		missing = name != "" && len(entries) == 0
	})
	if err != nil {
		return out, err
	}
	if missing {
		return out, fmt.Errorf("status %s: %w", name, ErrNoDaemon)
	}
	sort.Slice(out.Errors, func(i, j int) bool { return out.Errors[i].File < out.Errors[j].File })
	out.LogDropped = s.sink.Dropped()
	out.Containment = s.opts.Cgroups.String()
	s.upgradeStatus(&out)
	out.Daemons = []DaemonStatus{}
	for _, e := range entries {
		if e.pool != nil {
			read := e.pool.Status
			if brief {
				read = e.pool.Brief
			}
			ps, err := read(ctx)
			if err != nil {
				return out, err
			}
			e.st.State = ps.State.String()
			if e.draining && ps.State == prefork.PoolStopped {
				e.st.State = prefork.PoolStopping.String() // until the master has taken it in
			}
			e.st.Workers = ps.Workers
			e.st.Policy = ps.Policy
			e.st.Spawns, e.st.Restarts, e.st.Requests, e.st.Malformed = ps.Spawns, ps.Restarts, ps.Requests, ps.Malformed
			e.st.Since = ps.Since
			e.st.OOMKills, e.st.RSSRecycles, e.st.Resources = ps.OOMKills, ps.RSSRecycles, ps.Resources
			e.st.Saturated = ps.Saturated
		}
		if e.st.Health = s.health.status(e.st.Name); e.st.Health != nil && e.st.Reason == "" {
			e.st.Reason = e.st.Health.Reason
		}
		if how, ok := s.lastExits.Load(e.st.Name); ok {
			e.st.LastExit = how.(string)
		}
		if e.st.Workers == nil {
			e.st.Workers = []prefork.WorkerStatus{}
		}
		if e.st.Listeners == nil {
			e.st.Listeners = []string{}
		}
		out.Daemons = append(out.Daemons, e.st)
	}
	if out.Errors == nil {
		out.Errors = []FileError{}
	}
	return out, nil
}
