package bench

import (
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBarChartIsAPNG(t *testing.T) {
	{
		path := filepath.Join(t.TempDir(), "c.png")
		err := drawBarChart(path, barChart{title: "t", ylabel: "req/s", groups: []string{"1", "16", "64"},
			series: []barSeries{{"nsfd", []float64{1, 2, 300}}, {"peer", []float64{2, 0, 4}}}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
			t.Errorf("chart is %v", b)
		}
	}
	if err := drawBarChart(filepath.Join(t.TempDir(), "c.png"), barChart{groups: []string{"a"},
		series: []barSeries{{"x", []float64{1, 2}}}}); err == nil {
		t.Error("a series with more values than groups drew")
	}
}

func TestRatioText(t *testing.T) {
	for _, c := range []struct {
		a, b float64
		want string
	}{{1, 20, "1/20"}, {3, 1, "3×"}, {0, 1, "–"}, {2, 2, "1×"}} {
		if got := ratioText(c.a, c.b); got != c.want {
			t.Errorf("ratioText(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestReportLayout(t *testing.T) {
	saved := report.sections
	defer func() { report.sections = saved; report.targets = nil; report.charts = nil }()
	addSection(2, "Second", func(w io.Writer) { io.WriteString(w, "two\n") })
	addSection(1, "First", func(w io.Writer) { io.WriteString(w, "one\n") })
	addTarget(target{order: 1, what: "x", goal: "≤ 1", measured: "2", met: false, note: "why"})
	addChart(barChart{order: 1, file: "first.png", title: "F", groups: []string{"a"}, series: []barSeries{{"s", []float64{1}}}})
	path := filepath.Join(t.TempDir(), "b.md")
	if err := writeReport(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	if i, j := strings.Index(s, "## First"), strings.Index(s, "## Second"); i < 0 || j < i {
		t.Errorf("sections out of order:\n%s", s)
	}
	if !strings.Contains(s, "**NOT met**: why") || !strings.Contains(s, "![F](first.png)") {
		t.Errorf("report lacks the verdict or the chart:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "first.png")); err != nil {
		t.Error(err)
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 1s test @ http://127.0.0.1:40000/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    85.12us   40.00us   1.20ms   90.00%
    Req/Sec    45.00k     1.00k   47.00k    80.00%
  Latency Distribution
     50%   78.00us
     75%   90.00us
     90%  110.00us
     99%    1.05ms
  45123 requests in 1.00s, 5.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 0
Requests/sec:  45100.00
Transfer/sec:      5.00MB
`
	r := parseWrk(out, loadResult{})
	if r.Requests != 45123 || r.Errors != 2 || r.P50 != 78*time.Microsecond || r.P99 != 1050*time.Microsecond {
		t.Errorf("parsed %+v", r)
	}
	if rps := r.RPS(); rps < 45099 || rps > 45101 {
		t.Errorf("RPS %v, want wrk's 45100", rps)
	}
	if r := parseWrk("garbage", loadResult{}); r.Errors != 1 {
		t.Errorf("garbage parsed as %+v", r)
	}
}

func TestWrapLabel(t *testing.T) {
	if got := wrapLabel("echo connect-per-request by wrk", 14); got != "echo\nconnect-per-request\nby wrk" {
		t.Errorf("got %q", got)
	}
}

func TestPlainHTTPWhy(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	req := func(n int) loadResult { return loadResult{Requests: n, Elapsed: time.Second} }
	uneven := &side{rounds: []round{
		{load: req(1000), workerCPU: 40 * ms, perWorker: []time.Duration{30 * ms, 10 * ms}}, // 75%
		{load: req(1000), workerCPU: 40 * ms, perWorker: []time.Duration{8 * ms, 32 * ms}},  // 80%
		{load: req(1000), workerCPU: 40 * ms, perWorker: []time.Duration{28 * ms, 12 * ms}}, // 70%
	}}
	if share, n := busiestShare(uneven); n != 2 || share < 0.749 || share > 0.751 {
		t.Errorf("busiestShare = %v, %d; want 0.75, 2", share, n)
	}
	plain := &side{rounds: []round{{load: req(1000), workerCPU: 40 * ms}}}
	if why := plainHTTPWhy(uneven, plain, false); !strings.Contains(why, "did 75% of their CPU") || !strings.Contains(why, "split unevenly") {
		t.Errorf("uneven: %q", why)
	}
	even := &side{rounds: []round{{load: req(1000), workerCPU: 50 * ms, perWorker: []time.Duration{25 * ms, 25 * ms}}}}
	if why := plainHTTPWhy(even, plain, true); !strings.Contains(why, "did 50%") || !strings.Contains(why, "the split is even") || !strings.Contains(why, "wakes every worker's poller") {
		t.Errorf("even: %q", why)
	}
	if why := plainHTTPWhy(plain, plain, false); why != "" {
		t.Errorf("no per-worker account: %q", why)
	}
}
