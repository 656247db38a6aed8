package bench

// BenchmarkLogShipping: workers' stdout through nsfd's central log against
// the same workers writing straight to files.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/worker"
)

// logLineMark starts every line logspam writes; the ready line lacks it.
var logLineMark = []byte("logline w=")

// logspamPayload is what follows "seq=N " on each line (bench/logspam).
const logspamPayload = "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// shipRound is one burst of one side: every worker writes its lines.
type shipRound struct {
	elapsed   time.Duration // from the start signal until the last line was in the file(s)
	written   time.Duration // from the start signal until every worker had written its last line
	delivered int           // lines of the burst found in the file(s)
	check     lineCheck
	dropped   int // lines nsfd reported dropped ("N log lines dropped")
}

func (r shipRound) linesPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.delivered) / r.elapsed.Seconds()
}

// lineCheck is what parsing a burst's lines back found.
type lineCheck struct {
	missing, duplicated, corrupt int
}

// logShipRun is what BenchmarkLogShipping measured.
type logShipRun struct {
	workers, lines int // per round: workers × lines each
	nsfd, direct   []shipRound
	lineBytes      int
	notes          []string
}

var logShipDone *logShipRun

// BenchmarkLogShipping measures how fast 8 workers' lines reach the central
// log under nsfd, against the same binaries writing to files of their own,
// and checks that every line arrives exactly once.
func BenchmarkLogShipping(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	if logShipDone != nil {
		reportLogShipping(b, logShipDone)
		return
	}
	run := &logShipRun{workers: 8, lines: quick(250_000, 20_000)}
	rounds := quick(5, 3)
	bin := buildLogspam(b)
	run.lineBytes = len(fmt.Sprintf("logline w=0 seq=%d %s\n", run.lines/2, logspamPayload))

	// One daemon per round under one master: a worker writes its burst
	// once, then waits, so each round takes fresh workers.
	tmp := shortTempDir(b, "nsfdls")
	daemons := map[string]string{}
	doneDirs := map[string]string{}
	for r := range rounds {
		d := "ship" + strconv.Itoa(r)
		doneDirs[d] = filepath.Join(tmp, d)
		if err := os.Mkdir(doneDirs[d], 0o755); err != nil {
			b.Fatal(err)
		}
		daemons[d] = fmt.Sprintf("command = %s -lines %d -done %s\nport = 127.0.0.1:0\ntype = simple\n"+
			"min_servers = %d\nmax_servers = %d\nmin_spare_servers = 0\nmax_spare_servers = %d\n",
			bin, run.lines, doneDirs[d], run.workers, run.workers, run.workers-1)
	}
	m := startMaster(b, daemons)
	for d := range daemons {
		m.addr(d)
		m.waitWorkers(d, run.workers)
	}
	central := filepath.Join(m.dir, "var", "log", "nsfd.log")

	for r := range rounds {
		d := "ship" + strconv.Itoa(r)
		nsfdRound := func() {
			run.nsfd = append(run.nsfd, shipThroughNsfd(b, m, central, d, doneDirs[d], run.workers, run.lines))
		}
		directRound := func() {
			run.direct = append(run.direct, shipDirect(b, bin, filepath.Join(tmp, "direct"+strconv.Itoa(r)), run.workers, run.lines))
		}
		if r%2 == 0 {
			directRound()
			nsfdRound()
		} else {
			nsfdRound()
			directRound()
		}
	}
	if k := strings.Count(m.log(), "replacing it"); k > 0 {
		run.notes = append(run.notes, fmt.Sprintf("%d workers replaced by the nsfd master during the run", k))
	}
	logShipDone = run
	reportLogShipping(b, run)
	printLogShipping(os.Stdout, run)
	addLogShippingReport(run)
}

// buildLogspam builds bench/logspam into a temporary directory.
func buildLogspam(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "logspam")
	cmd := exec.Command("go", "build", "-o", bin, "./logspam")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build bench/logspam: %v\n%s", err, out)
	}
	return bin
}

// shortTempDir is a temporary directory with a short path (UNIX socket paths
// are limited to 107 bytes), removed when tb ends.
func shortTempDir(tb testing.TB, prefix string) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// shipThroughNsfd starts the burst of daemon d's workers and waits until
// their lines are in the central log.
func shipThroughNsfd(tb testing.TB, m *master, central, d, doneDir string, workers, lines int) shipRound {
	tb.Helper()
	st, err := os.Stat(central)
	if err != nil {
		tb.Fatal(err)
	}
	from := st.Size()
	counter, err := newMarkCounter(central, from)
	if err != nil {
		tb.Fatal(err)
	}
	defer counter.close()
	pids := m.workers(d)
	if len(pids) != workers {
		tb.Fatalf("daemon %s: %d workers, want %d", d, len(pids), workers)
	}
	rd := burst(tb, pids, []*markCounter{counter}, doneDir, workers, lines)

	// Check every line: parse the records the burst added.
	f, err := os.Open(central)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		tb.Fatal(err)
	}
	seen := newSeqSet(workers, lines)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), logging.MaxLineBytes+1024)
	for sc.Scan() {
		rec, ok := logging.ParseRecord(sc.Bytes())
		switch {
		case !ok:
		case rec.Daemon == d && rec.Stream == logging.StreamStdout:
			if strings.HasPrefix(rec.Message, string(logLineMark)) {
				seen.add(-1, rec.Message)
			}
		case rec.Stream == "" && strings.HasSuffix(rec.Message, " log lines dropped"):
			n, _ := strconv.Atoi(strings.TrimSuffix(rec.Message, " log lines dropped"))
			rd.dropped += n
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	rd.check = seen.result()
	return rd
}

// shipDirect starts workers copies of bin with stdout to files of their own
// in dir, makes them write their burst, waits until every line is in the
// files, checks them, and stops the workers.
func shipDirect(tb testing.TB, bin, dir string, workers, lines int) shipRound {
	tb.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(dir)
	doneDir := filepath.Join(dir, "done")
	if err := os.Mkdir(doneDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	env := envWithout(worker.EnvListenFDs, worker.EnvListenPID, worker.EnvListenFDNames, worker.EnvNotifySocket,
		worker.EnvWatchdogUSec, worker.EnvWatchdogPID, worker.EnvDaemon, worker.EnvWorker)
	var cmds []*exec.Cmd
	var exited []chan struct{}
	defer func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
		}
		for i, c := range cmds {
			select {
			case <-exited[i]:
			case <-time.After(10 * time.Second):
				c.Process.Kill()
				<-exited[i]
			}
		}
	}()
	var files []string
	for i := range workers {
		path := filepath.Join(dir, "worker"+strconv.Itoa(i)+".log")
		out, err := os.Create(path)
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(bin, "-lines", strconv.Itoa(lines), "-done", doneDir)
		cmd.Env = append(slices.Clone(env), worker.EnvWorker+"="+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = cmd.Start()
		out.Close()
		if err != nil {
			tb.Fatal(err)
		}
		ch := make(chan struct{})
		go func() { cmd.Wait(); close(ch) }()
		cmds, exited, files = append(cmds, cmd), append(exited, ch), append(files, path)
	}
	ready := waitFor(30*time.Second, 5*time.Millisecond, func() bool {
		for _, p := range files {
			if b, _ := os.ReadFile(p); !bytes.Contains(b, []byte(" ready\n")) {
				return false
			}
		}
		return true
	})
	if !ready {
		tb.Fatalf("direct logspam workers not ready after 30s")
	}
	var counters []*markCounter
	for _, p := range files {
		c, err := newMarkCounter(p, 0)
		if err != nil {
			tb.Fatal(err)
		}
		defer c.close()
		counters = append(counters, c)
	}
	var pids []int
	for _, c := range cmds {
		pids = append(pids, c.Process.Pid)
	}
	rd := burst(tb, pids, counters, doneDir, workers, lines)
	for i, p := range files {
		seen := newSeqSet(workers, lines)
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if bytes.HasPrefix(sc.Bytes(), logLineMark) {
				seen.add(i, sc.Text())
			}
		}
		f.Close()
		// Each file holds one worker's lines: only its own count as missing.
		res := seen.resultFor(i)
		rd.check.missing += res.missing
		rd.check.duplicated += res.duplicated
		rd.check.corrupt += res.corrupt + seen.foreign
	}
	return rd
}

// burst sends SIGUSR1 to every worker and waits until the counters have
// seen workers × lines lines, or until every worker has written its last
// line (its file in doneDir) and no line has come for a second: lines were
// lost. The time is that of the last line seen.
func burst(tb testing.TB, pids []int, counters []*markCounter, doneDir string, workers, lines int) shipRound {
	tb.Helper()
	want := workers * lines
	start := time.Now()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			tb.Fatalf("signal worker %d: %v", pid, err)
		}
	}
	var rd shipRound
	last := start
	finished := false
	ok := waitFor(5*time.Minute, 2*time.Millisecond, func() bool {
		n := 0
		for _, c := range counters {
			n += c.poll()
		}
		now := time.Now()
		if n > rd.delivered {
			rd.delivered, last = n, now
		}
		if n >= want {
			return true
		}
		if !finished {
			ents, _ := os.ReadDir(doneDir)
			if finished = len(ents) == workers; finished {
				rd.written = now.Sub(start)
			}
		}
		return finished && now.Sub(last) > time.Second
	})
	if !ok {
		tb.Fatalf("burst of %d lines: %d arrived within 5 minutes", want, rd.delivered)
	}
	rd.elapsed = last.Sub(start)
	if !finished { // every line arrived before the poll saw the last done file
		waitFor(30*time.Second, 2*time.Millisecond, func() bool {
			ents, _ := os.ReadDir(doneDir)
			return len(ents) == workers
		})
		rd.written = min(time.Since(start), rd.elapsed)
	}
	return rd
}

// markCounter counts the occurrences of logLineMark in a file that grows,
// reading only what was appended since the last poll.
type markCounter struct {
	f     *os.File
	buf   []byte
	carry int // bytes at the start of buf kept from the last read
	n     int
}

func newMarkCounter(path string, from int64) (*markCounter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &markCounter{f: f, buf: make([]byte, 1<<20)}, nil
}

// poll reads what was appended and returns the count so far. The mark does
// not overlap itself, so the last len(mark)-1 bytes of a read, kept for the
// next, hold no counted mark's start.
func (c *markCounter) poll() int {
	for {
		k, err := c.f.Read(c.buf[c.carry:])
		if k > 0 {
			data := c.buf[:c.carry+k]
			c.n += bytes.Count(data, logLineMark)
			keep := min(len(data), len(logLineMark)-1)
			copy(c.buf, data[len(data)-keep:])
			c.carry = keep
		}
		if err != nil || k == 0 {
			return c.n
		}
	}
}

func (c *markCounter) close() { c.f.Close() }

// seqSet counts each (worker, seq) of a burst's lines.
type seqSet struct {
	lines   int
	count   [][]uint8
	corrupt int
	foreign int // lines of another worker, where only one is expected
}

func newSeqSet(workers, lines int) *seqSet {
	s := &seqSet{lines: lines, count: make([][]uint8, workers)}
	for i := range s.count {
		s.count[i] = make([]uint8, lines)
	}
	return s
}

// add records one line "logline w=ID seq=SEQ payload"; only is the worker
// expected, or -1 for any.
func (s *seqSet) add(only int, line string) {
	var w, seq int
	rest, ok := strings.CutPrefix(line, string(logLineMark))
	ws, rest, ok2 := strings.Cut(rest, " seq=")
	ss, payload, ok3 := strings.Cut(rest, " ")
	var err1, err2 error
	w, err1 = strconv.Atoi(ws)
	seq, err2 = strconv.Atoi(ss)
	if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil || payload != logspamPayload ||
		w < 0 || w >= len(s.count) || seq < 0 || seq >= s.lines {
		s.corrupt++
		return
	}
	if only >= 0 && w != only {
		s.foreign++
		return
	}
	if s.count[w][seq] < 255 {
		s.count[w][seq]++
	}
}

func (s *seqSet) result() lineCheck {
	var r lineCheck
	for w := range s.count {
		x := s.resultFor(w)
		r.missing += x.missing
		r.duplicated += x.duplicated
	}
	r.corrupt = s.corrupt
	return r
}

func (s *seqSet) resultFor(w int) lineCheck {
	var r lineCheck
	for _, c := range s.count[w] {
		switch {
		case c == 0:
			r.missing++
		case c > 1:
			r.duplicated += int(c) - 1
		}
	}
	r.corrupt = s.corrupt
	return r
}

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
