package bench

// The report of BenchmarkLogShipping: its summary, metrics, table, target
// and section.

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nsfd/nsfd/logging"
)

// logShipSummary condenses the rounds of both sides.
type logShipSummary struct {
	nsfd, direct float64   // median lines/s
	ratios       []float64 // per round: nsfd ÷ direct of the same round
	nsfdElapsed  time.Duration
	directElapse time.Duration
	nsfdWritten  time.Duration // median time until the workers under nsfd had written every line
	lost         lineCheck     // nsfd, all rounds
	directLost   lineCheck
	dropped      int
}

func summarizeLogShipping(run *logShipRun) logShipSummary {
	var s logShipSummary
	var n, d []float64
	var ne, de, nw []time.Duration
	for i, r := range run.nsfd {
		n, ne, nw = append(n, r.linesPerSec()), append(ne, r.elapsed), append(nw, r.written)
		s.lost.missing += r.check.missing
		s.lost.duplicated += r.check.duplicated
		s.lost.corrupt += r.check.corrupt
		s.dropped += r.dropped
		if i < len(run.direct) && run.direct[i].linesPerSec() > 0 {
			s.ratios = append(s.ratios, r.linesPerSec()/run.direct[i].linesPerSec())
		}
	}
	for _, r := range run.direct {
		d, de = append(d, r.linesPerSec()), append(de, r.elapsed)
		s.directLost.missing += r.check.missing
		s.directLost.duplicated += r.check.duplicated
		s.directLost.corrupt += r.check.corrupt
	}
	s.nsfd, s.direct = median(n), median(d)
	s.nsfdElapsed, s.directElapse, s.nsfdWritten = median(ne), median(de), median(nw)
	return s
}

func reportLogShipping(b *testing.B, run *logShipRun) {
	s := summarizeLogShipping(run)
	b.ReportMetric(s.nsfd, "nsfd-lines/s")
	b.ReportMetric(s.direct, "direct-lines/s")
	if len(s.ratios) > 0 {
		b.ReportMetric(median(s.ratios), "nsfd/direct")
	}
	b.ReportMetric(float64(s.lost.missing), "nsfd-missing")
	b.ReportMetric(float64(s.lost.duplicated), "nsfd-duplicated")
}

// logShipTable writes one row per round and side.
func logShipTable(w io.Writer, run *logShipRun, md bool) {
	row := func(cells ...string) {
		if md {
			fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
		} else {
			fmt.Fprintln(w, strings.Join(cells, "\t")+"\t")
		}
	}
	row("round", "side", "lines in file(s)", "workers done", "time to last line", "lines/s", "missing", "duplicated", "corrupt", "reported dropped", "nsfd/direct")
	if md {
		row("---:", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
	}
	for i := range max(len(run.nsfd), len(run.direct)) {
		for _, side := range []string{"direct", "nsfd"} {
			rs := run.direct
			if side == "nsfd" {
				rs = run.nsfd
			}
			if i >= len(rs) {
				continue
			}
			r := rs[i]
			ratio, dropped, label := "", "–", ""
			if side == "nsfd" {
				dropped = strconv.Itoa(r.dropped)
				if i < len(run.direct) && run.direct[i].linesPerSec() > 0 {
					ratio = fmt.Sprintf("%.3f", r.linesPerSec()/run.direct[i].linesPerSec())
				}
			} else {
				label = strconv.Itoa(i + 1)
			}
			row(label, side, fmt.Sprintf("%d / %d", r.delivered, run.workers*run.lines), roundDur(r.written), roundDur(r.elapsed),
				fmt.Sprintf("%.0f", r.linesPerSec()), strconv.Itoa(r.check.missing), strconv.Itoa(r.check.duplicated),
				strconv.Itoa(r.check.corrupt), dropped, ratio)
		}
	}
}

func printLogShipping(w io.Writer, run *logShipRun) {
	s := summarizeLogShipping(run)
	fmt.Fprintf(w, "\nlog shipping: %d workers × %d lines of %d bytes per round, %d rounds; medians: nsfd %.0f lines/s, direct %.0f lines/s, nsfd/direct %.3f\n",
		run.workers, run.lines, run.lineBytes, len(run.nsfd), s.nsfd, s.direct, median(s.ratios))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	logShipTable(tw, run, false)
	tw.Flush()
	for _, n := range run.notes {
		fmt.Fprintln(w, "  "+n)
	}
	fmt.Fprintln(w)
}

func addLogShippingReport(run *logShipRun) {
	s := summarizeLogShipping(run)
	total := run.workers * run.lines * len(run.nsfd)
	t := target{
		order:    orderLogs,
		what:     fmt.Sprintf("log shipping: lines of %d workers lost or duplicated on the way to nsfd's central log", run.workers),
		goal:     "0",
		measured: fmt.Sprintf("%d missing, %d duplicated of %d (%d reported dropped by nsfd)", s.lost.missing, s.lost.duplicated, total, s.dropped),
		met:      s.lost.missing == 0 && s.lost.duplicated == 0 && s.lost.corrupt == 0,
	}
	if !t.met {
		t.note = fmt.Sprintf("nsfd's log buffer (%d records) filled: the workers wrote %.0f lines/s into their pipes "+
			"(every line ÷ the time until the last worker was done, median), the one writer of the central log put %.0f lines/s "+
			"into the file, and a full buffer drops lines rather than stall the workers (DESIGN.md)", logging.DefaultBuffer,
			float64(run.workers*run.lines)/s.nsfdWritten.Seconds(), s.nsfd)
		if s.lost.missing != s.dropped {
			t.note += fmt.Sprintf("; %d missing but %d reported dropped", s.lost.missing, s.dropped)
		}
	}
	addTarget(t)
	addSection(orderLogs, "Log shipping: workers' stdout through nsfd's central log", func(w io.Writer) {
		fmt.Fprintf(w, "How fast the lines of %d busy workers reach disk through nsfd, and whether each arrives exactly once.\n", run.workers)
		fmt.Fprintf(w, "The worker (`bench/logspam`, Go) writes %d lines of %d bytes (`logline w=ID seq=N` and a fixed payload; ID\n", run.lines, run.lineBytes)
		fmt.Fprintln(w, "from `NSFD_WORKER`) to stdout as fast as it can, one write(2) per line as a logger does, then waits without")
		fmt.Fprintln(w, "exiting. Each worker writes its burst when the benchmark sends it SIGUSR1, all workers at once, after each has")
		fmt.Fprintln(w, "printed its ready line: process start-up is not timed.")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "- nsfd: one `nsfd run` with one daemon per round (`type = simple`, `min_servers = max_servers = %d`); nsfd reads\n", run.workers)
		fmt.Fprintln(w, "  each worker's stdout pipe and writes each line as a record of the central log, one file (`[log] file`, text")
		fmt.Fprintf(w, "  format, default buffer of %d records). Lines are checked by parsing the records (`logging.ParseRecord`)\n", logging.DefaultBuffer)
		fmt.Fprintln(w, "  and their (worker, seq) pairs.")
		fmt.Fprintf(w, "- direct: the same binary, %d copies started by the benchmark with stdout (and stderr) redirected each to a\n", run.workers)
		fmt.Fprintln(w, "  file of its own (`> worker-N.log`), `NSFD_WORKER` set to 0…7.")
		fmt.Fprintf(w, "- Rounds: %d per side, direct and nsfd alternating which goes first. Time: from the signal until the last\n", len(run.nsfd))
		fmt.Fprintln(w, "  line is in the file(s), found by reading what is appended every 2 ms and counting lines. If lines are")
		fmt.Fprintln(w, "  lost, until the last line that came: the benchmark stops waiting once every worker has written all of its")
		fmt.Fprintln(w, "  lines (it creates a file then; \"workers done\" is when the last did) and no line has come for a second.")
		fmt.Fprintln(w, "  lines/s = lines in the file(s) ÷ time to the last line. Medians over the rounds; nsfd/direct is the")
		fmt.Fprintln(w, "  median of the rounds' ratios.")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Medians: **nsfd %.0f lines/s, direct %.0f lines/s, nsfd/direct %.3f** (time to the last line: nsfd %s,\n",
			s.nsfd, s.direct, median(s.ratios), roundDur(s.nsfdElapsed))
		fmt.Fprintf(w, "direct %s). Lines lost through nsfd: %d missing, %d duplicated, %d corrupt in %d; nsfd reported %d dropped.\n",
			roundDur(s.directElapse), s.lost.missing, s.lost.duplicated, s.lost.corrupt, total, s.dropped)
		fmt.Fprintln(w)
		logShipTable(w, run, true)
		for _, n := range run.notes {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "- "+n)
		}
	})
}
