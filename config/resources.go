package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Resources are a daemon's control-group limits and its max_rss; zero
// means no limit.
type Resources struct {
	MemoryMax  int64   // memory_max: bytes; the kernel's OOM killer acts at it
	MemoryHigh int64   // memory_high: bytes; throttled above it
	PidsMax    int     // pids_max: processes and threads of all its workers together
	CPUWeight  int     // cpu_weight: 1–10000 (100: the default share)
	CPUMax     float64 // cpu_max: CPUs' worth of time, 0.5 for "50%"
	MaxRSS     int64   // max_rss: a worker above it is replaced gracefully
}

// applyResource loads memory_max, memory_high, pids_max, cpu_weight,
// cpu_max or max_rss.
func (l *daemonLoader) applyResource(e entry) {
	r := &l.d.Resources
	switch e.Key {
	case "memory_max", "memory_high", "max_rss":
		n, err := parseSize(e.Value)
		switch {
		case err != nil:
			l.fail(e, err.Error())
			return
		case n != 0 && n < 1<<20:
			l.fail(e, fmt.Sprintf("%s is less than 1M: a worker would not start", e.Value))
			return
		}
		*map[string]*int64{"memory_max": &r.MemoryMax, "memory_high": &r.MemoryHigh, "max_rss": &r.MaxRSS}[e.Key] = n
	case "pids_max":
		l.count(e, &r.PidsMax)
	case "cpu_weight":
		n, err := strconv.Atoi(strings.TrimSpace(e.Value))
		if err != nil || n < 1 || n > 10000 {
			l.fail(e, fmt.Sprintf("%q is not a weight from 1 to 10000 (100 is the default share)", e.Value))
			return
		}
		r.CPUWeight = n
	case "cpu_max":
		v, err := parseCPUMax(e.Value)
		if err != nil {
			l.fail(e, err.Error())
			return
		}
		r.CPUMax = v
	}
}

// parseCPUMax parses cpu_max: a percentage of one CPU ("50%", "200%"), 0
// for none.
func parseCPUMax(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	switch {
	case !ok && s != "0":
		return 0, fmt.Errorf("%q is not a share of CPU time (write 50%% for half a CPU, 200%% for two)", s)
	case err != nil || n < 0:
		return 0, fmt.Errorf("%q is not a share of CPU time (write 50%% for half a CPU, 200%% for two)", s)
	case n != 0 && n < 1:
		return 0, fmt.Errorf("%q is less than 1%% of a CPU", s)
	}
	return n / 100, nil
}

// checkResources checks what depends on several resource keys.
func (l *daemonLoader) checkResources() {
	r := l.d.Resources
	if r.MemoryHigh > 0 && r.MemoryMax > 0 && r.MemoryHigh > r.MemoryMax {
		l.failAt("memory_high", "is above memory_max: the kernel would kill before it throttles", "lower memory_high or raise memory_max", nil)
	}
	if r.MaxRSS > 0 && r.MemoryMax > 0 && r.MaxRSS >= r.MemoryMax {
		l.failAt("max_rss", "is not below memory_max: the OOM killer would act before the graceful replacement", "lower max_rss below memory_max", nil)
	}
}
