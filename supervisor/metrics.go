package supervisor

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nsfd/nsfd/prefork"
)

// metrics are the master's Prometheus metrics. Counters of events come
// from the pools' observers; gauges of the present state are read from a
// status snapshot at scrape time.
type metrics struct {
	reg      *prometheus.Registry
	spawns   *prometheus.CounterVec
	exits    *prometheus.CounterVec
	restarts *prometheus.CounterVec
	reloads  prometheus.Counter
}

func newMetrics(s *Supervisor) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		spawns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsfd_worker_spawns_total", Help: "Workers started.",
		}, []string{"daemon"}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsfd_worker_exits_total", Help: "Workers exited, by cause (" + causeNames() + ").",
		}, []string{"daemon", "cause"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsfd_worker_restarts_total", Help: "Workers started again after an unplanned exit.",
		}, []string{"daemon"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nsfd_reloads_total", Help: "Configuration reloads, the first start included.",
		}),
	}
	m.reg.MustRegister(m.spawns, m.exits, m.restarts, m.reloads,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "nsfd_log_lines_dropped_total", Help: "Log lines dropped because the central log sink was too slow.",
		}, func() float64 { return float64(s.sink.Dropped()) }),
		&stateCollector{s: s},
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe counts a pool event; called from pools' goroutines.
func (m *metrics) observe(e prefork.Event) {
	switch e.Kind {
	case prefork.EventSpawn:
		m.spawns.WithLabelValues(e.Pool).Inc()
	case prefork.EventExit:
		m.exits.WithLabelValues(e.Pool, e.Cause.String()).Inc()
		if e.Cause.Unplanned() {
			m.restarts.WithLabelValues(e.Pool).Inc()
		}
	}
}

var (
	workersDesc  = prometheus.NewDesc("nsfd_workers", "Workers by state.", []string{"daemon", "state"}, nil)
	requestsDesc = prometheus.NewDesc("nsfd_requests_total", "Requests begun by the workers (REQUESTS= reports, else BUSY=1 ones).", []string{"daemon"}, nil)
	daemonDesc   = prometheus.NewDesc("nsfd_daemon_up", "1 when the daemon is running, by state.", []string{"daemon", "state"}, nil)
	oomDesc      = prometheus.NewDesc("nsfd_oom_kills_total", "Workers killed by the kernel's OOM killer at their daemon's memory_max.", []string{"daemon"}, nil)
	rssDesc      = prometheus.NewDesc("nsfd_rss_recycles_total", "Workers replaced for staying above max_rss.", []string{"daemon"}, nil)
	memDesc      = prometheus.NewDesc("nsfd_daemon_memory_bytes", "Memory of the daemon's workers and what they started (its control group).", []string{"daemon"}, nil)
	memPeakDesc  = prometheus.NewDesc("nsfd_daemon_memory_peak_bytes", "Peak memory of the daemon's control group.", []string{"daemon"}, nil)
	cpuDesc      = prometheus.NewDesc("nsfd_daemon_cpu_seconds_total", "CPU time of the daemon's workers and what they started.", []string{"daemon"}, nil)
	procsDesc    = prometheus.NewDesc("nsfd_daemon_processes", "Processes in the daemon's control group (its workers alone without one).", []string{"daemon"}, nil)
	healthyDesc  = prometheus.NewDesc("nsfd_daemon_healthy", "1 while the daemon's health check passes (or has not failed yet), 0 while it fails; daemons with a health check only.", []string{"daemon"}, nil)
	hrollsDesc   = prometheus.NewDesc("nsfd_health_rolls_total", "Rolls of the daemon's workers for failed health checks (health_failures in a row).", []string{"daemon"}, nil)
)

// causeNames lists the exit causes, for the help text.
func causeNames() string {
	var names []string
	for _, c := range prefork.ExitCauses() {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ")
}

// stateCollector reads the present state at scrape time.
type stateCollector struct{ s *Supervisor }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- workersDesc
	ch <- requestsDesc
	ch <- daemonDesc
	for _, d := range []*prometheus.Desc{oomDesc, rssDesc, memDesc, memPeakDesc, cpuDesc, procsDesc, healthyDesc, hrollsDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.s.Status(ctx, "")
	if err != nil {
		return
	}
	for _, d := range st.Daemons {
		counts := map[string]int{}
		for _, st := range prefork.WorkerStates() {
			counts[st.String()] = 0
		}
		for _, w := range d.Workers {
			counts[w.State]++
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(n), d.Name, state)
		}
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(d.Requests), d.Name)
		up := 0.0
		if d.State == prefork.PoolRunning.String() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(daemonDesc, prometheus.GaugeValue, up, d.Name, d.State)
		ch <- prometheus.MustNewConstMetric(oomDesc, prometheus.CounterValue, float64(d.OOMKills), d.Name)
		ch <- prometheus.MustNewConstMetric(rssDesc, prometheus.CounterValue, float64(d.RSSRecycles), d.Name)
		if h := d.Health; h != nil {
			healthy := 0.0
			if h.Healthy {
				healthy = 1
			}
			ch <- prometheus.MustNewConstMetric(healthyDesc, prometheus.GaugeValue, healthy, d.Name)
			ch <- prometheus.MustNewConstMetric(hrollsDesc, prometheus.CounterValue, float64(h.Rolls), d.Name)
		}
		if r := d.Resources; r != nil {
			ch <- prometheus.MustNewConstMetric(memDesc, prometheus.GaugeValue, float64(r.MemoryBytes), d.Name)
			ch <- prometheus.MustNewConstMetric(memPeakDesc, prometheus.GaugeValue, float64(r.MemoryPeak), d.Name)
			ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, r.CPUSeconds, d.Name)
			ch <- prometheus.MustNewConstMetric(procsDesc, prometheus.GaugeValue, float64(r.Procs), d.Name)
		}
	}
}
