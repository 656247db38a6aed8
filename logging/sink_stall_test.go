package logging

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestStalledSink: a target that does not return never blocks WorkerLine or
// the logger; every line is either in the file or counted as dropped, and the
// drops are reported.
func TestStalledSink(t *testing.T) {
	const total, buffer = 100000, 1000
	path := filepath.Join(t.TempDir(), "nsfd.log")
	ft, err := openFileTarget(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	gt := newGatedTarget(ft)
	s, _ := openTest(t, Config{Buffer: buffer}, gt)
	logger := s.Logger().Named("test")

	write := func(i int) {
		if i%10 == 9 {
			logger.Info("master line", "n", i)
		} else {
			s.WorkerLine("w", 7, StreamStderr, []byte("worker line "+strconv.Itoa(i)))
		}
	}
	write(0)
	waitDone(t, "first write to the target", gt.entered)

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < total; i++ {
			write(i)
		}
	}()
	waitDone(t, "writing while the target is stalled", done)
	close(gt.gate)
	closeSink(t, s)

	var written, last int = 0, -1
	var report Record
	for _, r := range parseLines(t, readLines(t, path)) {
		var n int
		switch {
		case r.Module == "nsfd.test":
			n, _ = strconv.Atoi(r.Fields["n"])
		case r.Daemon == "w" && r.PID == 7 && r.Stream == StreamStderr:
			n, _ = strconv.Atoi(strings.TrimPrefix(r.Message, "worker line "))
		case r.Module == ModuleRoot && strings.HasSuffix(r.Message, " log lines dropped"):
			report = r
			continue
		default:
			t.Fatalf("unexpected record %+v", r)
		}
		if n <= last {
			t.Fatalf("line %d after line %d", n, last)
		}
		last = n
		written++
	}
	dropped := s.Dropped()
	if uint64(written)+dropped != total {
		t.Fatalf("%d lines in the file + %d dropped != %d written", written, dropped, total)
	}
	// The writer held one record, the buffer the next ones.
	if written != buffer+1 {
		t.Errorf("%d lines in the file, want %d", written, buffer+1)
	}
	if want := fmt.Sprintf("%d log lines dropped", dropped); report.Message != want || report.Level != "warn" {
		t.Errorf("drop report %+v, want message %q at warn", report, want)
	}
}

// TestStalledSinkCapture: workers writing 100,000 lines through pipes while
// the target is stalled are held back for Config.StallTimeout at most, then
// read on, and every line is either in the file or counted as dropped, in
// the same way as TestStalledSink.
func TestStalledSinkCapture(t *testing.T) {
	const workers, perWorker, buffer = 4, 25000, 1000
	path := filepath.Join(t.TempDir(), "nsfd.log")
	ft, err := openFileTarget(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	gt := newGatedTarget(ft)
	s, _ := openTest(t, Config{Buffer: buffer}, gt)
	s.Logger().Info("stall")
	waitDone(t, "first write to the target", gt.entered)

	// Each worker writes its lines into a pipe, as a worker process does
	// into its stdout; Capture reads the other end.
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for w := range workers {
			r, pw, err := os.Pipe()
			if err != nil {
				t.Error(err)
				return
			}
			wg.Go(func() {
				defer r.Close()
				if err := s.Capture(fmt.Sprintf("w%d", w), 100+w, StreamStdout, r); err != nil {
					t.Errorf("capture: %v", err)
				}
			})
			wg.Go(func() {
				defer pw.Close()
				bw := bufio.NewWriter(pw)
				for i := range perWorker {
					fmt.Fprintf(bw, "line %d\n", i)
				}
				if err := bw.Flush(); err != nil {
					t.Errorf("pipe: %v", err)
				}
			})
		}
		wg.Wait()
	}()
	waitDone(t, "workers writing while the target is stalled", done)
	close(gt.gate)
	closeSink(t, s)

	last := make([]int, workers)
	for i := range last {
		last[i] = -1
	}
	written := 0
	var report Record
	for _, r := range parseLines(t, readLines(t, path)) {
		switch {
		case r.Module == ModuleRoot && r.Message == "stall":
			continue
		case r.Module == ModuleRoot && strings.HasSuffix(r.Message, " log lines dropped"):
			report = r
			continue
		}
		w := r.PID - 100
		n, err := strconv.Atoi(strings.TrimPrefix(r.Message, "line "))
		if w < 0 || w >= workers || r.Daemon != fmt.Sprintf("w%d", w) || err != nil {
			t.Fatalf("unexpected record %+v", r)
		}
		if n <= last[w] {
			t.Fatalf("worker %d: line %d after line %d", w, n, last[w])
		}
		last[w] = n
		written++
	}
	dropped := s.Dropped()
	t.Logf("%d lines in the file, %d dropped", written, dropped)
	if uint64(written)+dropped != workers*perWorker {
		t.Fatalf("%d lines in the file + %d dropped != %d written", written, dropped, workers*perWorker)
	}
	if written != buffer {
		t.Errorf("%d lines in the file, want the %d the buffer held", written, buffer)
	}
	if want := fmt.Sprintf("%d log lines dropped", dropped); report.Message != want {
		t.Errorf("drop report %+v, want %q", report, want)
	}
}

// TestDropsReportedOnceCaughtUp: the report comes after the records that were
// buffered when the drops happened, not before.
func TestDropsReportedOnceCaughtUp(t *testing.T) {
	mt := &memTarget{}
	gt := newGatedTarget(mt)
	s, _ := openTest(t, Config{Buffer: 3}, gt)
	for i := range 10 {
		s.WorkerLine("d", 1, StreamStdout, []byte(strconv.Itoa(i)))
		if i == 0 {
			waitDone(t, "first write", gt.entered)
		}
	}
	close(gt.gate)
	waitFor(t, "the drop report", func() bool { return len(mt.lines()) == 5 })
	lines := mt.lines()
	for i, l := range lines[:4] {
		if r, _ := ParseRecord([]byte(l)); r.Message != strconv.Itoa(i) {
			t.Errorf("line %d: %q", i, l)
		}
	}
	if r, _ := ParseRecord([]byte(lines[4])); r.Message != "6 log lines dropped" || r.Fields["total"] != "6" {
		t.Errorf("report: %q", lines[4])
	}
	// Later lines are written normally, with no second report.
	s.WorkerLine("d", 1, StreamStdout, []byte("after"))
	closeSink(t, s)
	if lines := mt.lines(); len(lines) != 6 || !strings.HasSuffix(lines[5], " after") {
		t.Errorf("lines after the report: %q", lines[5:])
	}
}
