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
