package bench

// The report: every benchmark of a run adds its section, its targets and its
// charts here, and TestMain writes them into one Markdown file
// (-bench.report, docs/benchmarks.md for `make bench`) once all have run.

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

var (
	flagReport = flag.String("bench.report", "", "write the figures of this run as Markdown to this file (and its charts beside it)")
	flagQuick  = flag.Bool("bench.quick", false, "smaller fleets, fewer and shorter rounds: the whole suite in about 2 minutes")
	flagCmd    = flag.String("bench.cmd", "", "the command line that produced the run, for the report (set by bench/run)")
)

// Section orders: the report lists its sections in this order.
const (
	orderPerl = 10 + iota*10
	orderSupervisord
	orderDataPath
	orderLogs
	orderOverhead
	orderFleet
	orderContain
	orderUpgrade
	orderOnDemand
)

// target is one row of the report's summary: a goal set by an issue and what
// this run measured against it.
type target struct {
	order    int    // of the section it belongs to
	what     string // "kill → replacement running, median"
	goal     string // "≤ 1/20 of supervisord's"
	measured string // "1/143 (1.9 ms vs 272 ms)"
	met      bool
	note     string // why it is missed, when it is
}

type reportSection struct {
	order  int
	title  string
	render func(w io.Writer)
}

// barChart is a grouped bar chart: one group of bars per entry of groups,
// one bar per series in each group.
type barChart struct {
	order  int
	file   string // base name of the PNG, beside the report
	title  string
	ylabel string
	groups []string
	series []barSeries
}

// barSeries is one system's values, one per group.
type barSeries struct {
	name   string
	values []float64
}

var report struct {
	mu       sync.Mutex
	sections []reportSection
	targets  []target
	charts   []barChart
	notes    []string // about the machine and the peers' versions
}

// addSection registers a section of the report; render writes its Markdown
// body (the title is written by the report).
func addSection(order int, title string, render func(w io.Writer)) {
	report.mu.Lock()
	defer report.mu.Unlock()
	report.sections = append(report.sections, reportSection{order, title, render})
}

// addTarget records one target row of the summary.
func addTarget(t target) {
	report.mu.Lock()
	defer report.mu.Unlock()
	report.targets = append(report.targets, t)
}

// addChart records a chart to draw beside the report.
func addChart(c barChart) {
	report.mu.Lock()
	defer report.mu.Unlock()
	report.charts = append(report.charts, c)
}

// addMachineNote adds a line to the report's description of what ran, such
// as a peer's version.
func addMachineNote(s string) {
	report.mu.Lock()
	defer report.mu.Unlock()
	if !slices.Contains(report.notes, s) {
		report.notes = append(report.notes, s)
	}
}

// quick returns q under -bench.quick and full otherwise.
func quick[T any](full, q T) T {
	if *flagQuick {
		return q
	}
	return full
}

// ratio formats a/b as "1/N" when a < b and "N×" otherwise, for the summary.
func ratioText(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	if a < b {
		return fmt.Sprintf("1/%.3g", b/a)
	}
	return fmt.Sprintf("%.3g×", a/b)
}

// writeReport writes the report and its charts; started is when the run
// began.
func writeReport(path string, started time.Time) error {
	report.mu.Lock()
	defer report.mu.Unlock()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	slices.SortStableFunc(report.sections, func(a, b reportSection) int { return cmp.Compare(a.order, b.order) })
	slices.SortStableFunc(report.targets, func(a, b target) int { return cmp.Compare(a.order, b.order) })
	slices.SortStableFunc(report.charts, func(a, b barChart) int { return cmp.Compare(a.order, b.order) })

	var w bytes.Buffer
	fmt.Fprintln(&w, "# Benchmarks")
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "<!-- Written by `make bench` (bench/run): edit bench/report_test.go and the benchmarks, not this file. -->")
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "nsfd measured side by side with what users run today (Net::Server::PreFork, supervisord) and with no")
	fmt.Fprintln(&w, "supervisor at all, every figure of this page from one run. Each comparison is a ratio of two systems doing")
	fmt.Fprintln(&w, "the same work in the same run, minutes apart at most, on the same shared machine: read the ratios, and")
	fmt.Fprintln(&w, "the absolute figures beside them only as context. Component micro-benchmarks (registry, client) are in")
	fmt.Fprintln(&w, "[benchmarks-components.md](benchmarks-components.md).")
	fmt.Fprintln(&w)
	cmdline := *flagCmd
	if cmdline == "" {
		cmdline = "go test -run '^$' -bench . -benchtime 1x ./bench/ -args -bench.report " + path
	}
	mode := "full"
	if *flagQuick {
		mode = "quick (`--quick`: smaller fleets, fewer and shorter rounds; for a look, not for the record)"
	}
	fmt.Fprintf(&w, "Produced by `%s` on %s in %s (mode: %s).\n\n", cmdline, started.UTC().Format("2006-01-02 15:04 MST"),
		time.Since(started).Round(time.Second), mode)
	fmt.Fprintln(&w, "## Machine")
	fmt.Fprintln(&w)
	for _, line := range machineDescription() {
		fmt.Fprintln(&w, "- "+line)
	}
	for _, n := range report.notes {
		fmt.Fprintln(&w, "- "+n)
	}
	fmt.Fprintln(&w)
	if len(report.targets) > 0 {
		fmt.Fprintln(&w, "## Targets")
		fmt.Fprintln(&w)
		fmt.Fprintln(&w, "| what | target | measured | |")
		fmt.Fprintln(&w, "| --- | --- | --- | --- |")
		for _, t := range report.targets {
			verdict := "met"
			if !t.met {
				verdict = "**NOT met**"
				if t.note != "" {
					verdict += ": " + t.note
				}
			}
			fmt.Fprintf(&w, "| %s | %s | %s | %s |\n", t.what, t.goal, t.measured, verdict)
		}
		fmt.Fprintln(&w)
	}
	for _, c := range report.charts {
		if err := drawBarChart(filepath.Join(dir, c.file), c); err != nil {
			return fmt.Errorf("chart %s: %w", c.file, err)
		}
	}
	for _, s := range report.sections {
		fmt.Fprintln(&w, "## "+s.title)
		fmt.Fprintln(&w)
		var body bytes.Buffer
		s.render(&body)
		w.Write(bytes.TrimRight(body.Bytes(), "\n"))
		fmt.Fprintln(&w)
		fmt.Fprintln(&w)
		for _, c := range report.charts {
			if c.order == s.order {
				fmt.Fprintf(&w, "![%s](%s)\n\n", c.title, c.file)
			}
		}
	}
	if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// machineDescription says what the run ran on.
func machineDescription() []string {
	var out []string
	model, cpus := "", runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	out = append(out, fmt.Sprintf("%d CPUs (%s)%s", cpus, cmp.Or(model, runtime.GOARCH), mem))
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		out = append(out, "Linux "+strings.TrimSpace(string(b))+", "+runtime.Version())
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			out = append(out, fmt.Sprintf("load average when the report was written: %s %s %s (the machine is shared: "+
				"other jobs run beside the benchmark, which is why only ratios measured side by side are compared)", f[0], f[1], f[2]))
		}
	}
	if b, err := exec.Command("systemd-detect-virt").Output(); err == nil {
		out = append(out, "virtualisation: "+strings.TrimSpace(string(b)))
	}
	return out
}
