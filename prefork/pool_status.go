package prefork

import (
	"context"
	"errors"
	"slices"
	"time"
)

// WorkerStatus is one worker in a Status.
type WorkerStatus struct {
	PID      int       `json:"pid"`
	Slot     int       `json:"slot"`
	State    string    `json:"state"`
	Requests int       `json:"requests"`
	Started  time.Time `json:"started"`
	Status   string    `json:"status,omitempty"` // the worker's last STATUS= text
	// Resources is what the worker uses (its control group: it and what it
	// started; else the worker alone); nil if unknown.
	Resources *GroupStats `json:"resources,omitempty"`
}

// Status is a snapshot of a pool.
type Status struct {
	Name         string         `json:"name"`
	State        PoolState      `json:"state"`
	Listeners    []string       `json:"listeners"`
	Workers      []WorkerStatus `json:"workers"`
	Policy       PolicyOptions  `json:"policy"`
	Spawns       int            `json:"spawns"`
	Restarts     int            `json:"restarts"`            // workers started again after an unplanned exit
	FailedStarts int            `json:"failed_starts"`       // consecutive failed starts now
	Requests     int            `json:"requests"`            // requests served by all workers, exited ones included
	Malformed    int            `json:"malformed"`           // notify datagrams dropped
	OOMKills     int            `json:"oom_kills"`           // workers killed by the kernel's OOM killer
	RSSRecycles  int            `json:"rss_recycles"`        // workers replaced for max_rss
	Saturated    bool           `json:"saturated"`           // max_servers workers, all busy: no capacity left (Saturated)
	Resources    *GroupStats    `json:"resources,omitempty"` // what the daemon uses: its control group, else its workers' sum
	Since        time.Time      `json:"since"`
}

// Status returns a snapshot of the pool.
func (p *Pool) Status(ctx context.Context) (Status, error) {
	var (
		st    Status
		usage []func() *GroupStats
		cg    *DaemonCgroup
	)
	err := p.do(ctx, func() {
		st, cg = p.snapshot(), p.cfg.Cgroup
		for _, w := range st.Workers {
			usage = append(usage, p.usageOf(p.workers[w.PID]))
		}
	})
	if errors.Is(err, ErrStopped) {
		return Status{Name: p.cfg.Name, State: PoolStopped, Policy: p.cfg.Policy}, nil
	}
	if err != nil {
		return st, err
	}
	// The accounting is files to read, a few a worker: read off the pool's
	// goroutine, which goes on supervising meanwhile.
	for i, u := range usage {
		st.Workers[i].Resources = u()
	}
	st.Resources = daemonUsage(cg, st.Workers)
	return st, nil
}

// Brief is Status without the accounting of the workers and the daemon
// (Resources): what the master reads for itself (the registry's counters,
// the dependency gate), cheap however many workers there are.
func (p *Pool) Brief(ctx context.Context) (Status, error) {
	var st Status
	err := p.do(ctx, func() { st = p.snapshot() })
	if errors.Is(err, ErrStopped) {
		return Status{Name: p.cfg.Name, State: PoolStopped, Policy: p.cfg.Policy}, nil
	}
	return st, err
}
func (p *Pool) snapshot() Status {
	st := Status{
		Name:         p.cfg.Name,
		State:        p.state,
		Policy:       p.cfg.Policy,
		Spawns:       p.spawns,
		Restarts:     p.restarts,
		FailedStarts: p.failedStarts,
		Requests:     p.requests,
		Malformed:    p.malformed,
		OOMKills:     p.oomKills,
		RSSRecycles:  p.rssRecycles,
		Since:        p.since,
	}
	for _, l := range p.cfg.Listeners {
		st.Listeners = append(st.Listeners, l.String())
	}
	for _, w := range p.workers {
		st.Workers = append(st.Workers, WorkerStatus{
			PID: w.pid, Slot: w.slot, State: w.state.String(), Requests: w.requests, Started: w.started, Status: w.status,
		})
	}
	sortWorkers(st.Workers)
	sb, _ := p.scoreboard()
	st.Saturated = p.state == PoolRunning && Saturated(sb, p.cfg.Policy)
	return st
}

func sortWorkers(ws []WorkerStatus) {
	slices.SortFunc(ws, func(a, b WorkerStatus) int { return a.Slot - b.Slot })
}
