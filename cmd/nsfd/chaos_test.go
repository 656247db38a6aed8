//go:build linux

package main

// Fault injection (issue 8): the master under load while its workers are
// SIGKILLed, its configuration rolls a hundred times, it is itself killed
// with -9 and started again, its log sink stalls, and its PostgreSQL
// registry goes away and comes back.
//
// Each scenario has a short form, run by a plain `go test -race ./...`
// (seconds of chaos, generous bounds: the master under test is race-built
// and the machine is shared), and a long form with the figures:
//
//	go test -tags chaos -count=1 -run Chaos -v ./cmd/nsfd
//	NSFD_CHAOS=long go test -count=1 -run Chaos -v ./cmd/nsfd
//
// The measured figures are logged as a table and, with
// NSFD_CHAOS_REPORT=path, written to path: a markdown table if path ends in
// .md, JSON otherwise (each scenario rewrites the file with everything
// measured so far in this run).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// chaosTag is set by chaos_long_test.go under -tags chaos.
var chaosTag bool

// chaosScale is how much chaos a run applies.
type chaosScale struct {
	long     bool
	killFor  time.Duration // scenario 1: how long workers are killed
	killRate time.Duration // scenario 1: one kill per this
	reloads  int           // scenario 2
	logBlock time.Duration // scenario 4: how long the sink stays stalled
}

func chaosParams() chaosScale {
	if chaosTag || os.Getenv("NSFD_CHAOS") == "long" {
		return chaosScale{long: true, killFor: 30 * time.Second, killRate: 50 * time.Millisecond, reloads: 100, logBlock: 5 * time.Second}
	}
	return chaosScale{killFor: 2500 * time.Millisecond, killRate: 50 * time.Millisecond, reloads: 10, logBlock: 1500 * time.Millisecond}
}

func (s chaosScale) mode() string {
	if s.long {
		return "long"
	}
	return "short"
}

// halt stops the load and returns its counts, asserting nothing.
func (l *load) halt() (ok, failed int64) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

// chaosCtl talks to a master's control socket over one kept-alive
// connection: cheap enough to poll every few milliseconds.
type chaosCtl struct {
	t testing.TB
	c *http.Client
}

func newChaosCtl(t testing.TB, e *env) *chaosCtl {
	t.Helper()
	e.waitReady()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(e.dir, "var/run/nsfd.sock"))
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &chaosCtl{t: t, c: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

// tryGet may be called from any goroutine.
func (c *chaosCtl) tryGet(path string) ([]byte, error) {
	resp, err := c.c.Get("http://nsfd" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, err
}

func (c *chaosCtl) get(path string) []byte {
	c.t.Helper()
	b, err := c.tryGet(path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return b
}

// tryStatus may be called from any goroutine.
func (c *chaosCtl) tryStatus() (statusJSON, error) {
	var st statusJSON
	b, err := c.tryGet("/v1/status")
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	return st, err
}

func (c *chaosCtl) status() statusJSON {
	c.t.Helper()
	st, err := c.tryStatus()
	if err != nil {
		c.t.Fatalf("status: %v", err)
	}
	return st
}

// ready returns the pids of a daemon's ready workers (idle or busy), leaving
// out those in skip.
func (c *chaosCtl) ready(name string, skip map[int]bool) []int {
	c.t.Helper()
	var pids []int
	if d := c.status().daemon(name); d != nil {
		for _, w := range d.Workers {
			if (w.State == "idle" || w.State == "busy") && !skip[w.PID] {
				pids = append(pids, w.PID)
			}
		}
	}
	return pids
}

func (c *chaosCtl) pids(name string) map[int]bool {
	c.t.Helper()
	out := map[int]bool{}
	if d := c.status().daemon(name); d != nil {
		for _, w := range d.Workers {
			out[w.PID] = true
		}
	}
	return out
}

// metric returns the value of an unlabelled metric from /metrics.
func (c *chaosCtl) metric(name string) float64 {
	c.t.Helper()
	for _, line := range strings.Split(string(c.get("/metrics")), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				c.t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	c.t.Fatalf("no metric %s", name)
	return 0
}

// chaosWriteFile replaces a file in etc/ at once, the way an editor's
// atomic save does, so the watcher never sees it half written.
func chaosWriteFile(t testing.TB, e *env, name, content string) {
	t.Helper()
	tmp := filepath.Join(e.etc, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.etc, name)); err != nil {
		t.Fatal(err)
	}
}

// durations summarizes a sample of latencies.
type durations struct {
	n                int
	median, p99, max time.Duration
	sorted           []time.Duration
}

func summarize(ds []time.Duration) durations {
	if len(ds) == 0 {
		return durations{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return durations{n: len(s), median: at(0.5), p99: at(0.99), max: s[len(s)-1], sorted: s}
}

// within returns the fraction of the sample at most limit.
func (d durations) within(limit time.Duration) float64 {
	if d.n == 0 {
		return 0
	}
	i, _ := slices.BinarySearch(d.sorted, limit+1)
	return float64(i) / float64(d.n)
}

func (d durations) String() string {
	r := func(x time.Duration) string { return fmt.Sprintf("%.1f", float64(x)/float64(time.Millisecond)) }
	return fmt.Sprintf("%s / %s / %s ms (n=%d)", r(d.median), r(d.p99), r(d.max), d.n)
}

// chaosFigure is one measured row of the report.
type chaosFigure struct {
	Scenario string `json:"scenario"`
	Measure  string `json:"measure"`
	Value    string `json:"value"`
	Target   string `json:"target,omitempty"`
	Verdict  string `json:"verdict,omitempty"` // "met" or "missed", where a target is measurable
}

func fig(measure, value, target, verdict string) chaosFigure {
	return chaosFigure{Measure: measure, Value: value, Target: target, Verdict: verdict}
}

func metMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

var chaosFigures struct {
	mu   sync.Mutex
	rows []chaosFigure
}

// chaosReport logs a scenario's figures as a table and, with
// NSFD_CHAOS_REPORT set, rewrites that file with every figure of the run.
func chaosReport(t *testing.T, scenario string, sc chaosScale, figs ...chaosFigure) {
	t.Helper()
	for i := range figs {
		figs[i].Scenario = scenario
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s form, race-built master: %v)\n", scenario, sc.mode(), raceEnabled)
	writeChaosTable(&b, figs)
	t.Log(b.String())

	chaosFigures.mu.Lock()
	defer chaosFigures.mu.Unlock()
	chaosFigures.rows = append(chaosFigures.rows, figs...)
	path := os.Getenv("NSFD_CHAOS_REPORT")
	if path == "" {
		return
	}
	var out []byte
	if strings.HasSuffix(path, ".md") {
		var md strings.Builder
		fmt.Fprintf(&md, "Fault injection, %s form (`go test -run Chaos ./cmd/nsfd`%s), race-built master: %v, %s.\n\n",
			sc.mode(), map[bool]string{true: " with `-tags chaos`", false: ""}[sc.long], raceEnabled, time.Now().UTC().Format(time.DateOnly))
		writeChaosTable(&md, chaosFigures.rows)
		out = []byte(md.String())
	} else {
		var err error
		out, err = json.MarshalIndent(map[string]any{
			"mode": sc.mode(), "race": raceEnabled, "date": time.Now().UTC().Format(time.RFC3339), "figures": chaosFigures.rows,
		}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, '\n')
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Errorf("NSFD_CHAOS_REPORT: %v", err)
	}
}

// writeChaosTable writes figs as a markdown table.
func writeChaosTable(b *strings.Builder, figs []chaosFigure) {
	b.WriteString("| Scenario | Measure | Value | Target |\n|---|---|---|---|\n")
	for _, f := range figs {
		target := f.Target
		if f.Verdict != "" {
			target += " (" + f.Verdict + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", f.Scenario, f.Measure, f.Value, target)
	}
}
