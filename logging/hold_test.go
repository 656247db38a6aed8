package logging

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHoldUntilLowWater: past the high-water mark Hold returns a channel,
// which the writer closes once it has taken the buffer down to the low-water
// mark; nothing is dropped.
func TestHoldUntilLowWater(t *testing.T) {
	const buffer = 100
	mt := &memTarget{}
	gt := newGatedTarget(mt)
	s, _ := openTest(t, Config{Buffer: buffer, StallTimeout: time.Hour}, gt)
	s.WorkerLine("d", 1, StreamStdout, []byte("first"))
	waitDone(t, "first write", gt.entered) // the writer holds it; the buffer is empty
	for i := range buffer/2 - 1 {
		s.WorkerLine("d", 1, StreamStdout, []byte(strconv.Itoa(i)))
		if s.Hold() != nil {
			t.Fatalf("held at %d records, below the high-water mark", i+1)
		}
	}
	s.WorkerLine("d", 1, StreamStdout, []byte("high"))
	hold := s.Hold()
	if hold == nil {
		t.Fatal("not held at the high-water mark")
	}
	if again := s.Hold(); again != hold {
		t.Error("a second Hold of the same episode returned another channel")
	}
	select {
	case <-hold:
		t.Fatal("hold ended while the target is stuck")
	default:
	}
	close(gt.gate)
	waitDone(t, "the end of the hold", hold)
	closeSink(t, s)
	if n, d := len(mt.lines()), s.Dropped(); n != buffer/2+1 || d != 0 {
		t.Errorf("%d lines, %d dropped; want %d, 0", n, d, buffer/2+1)
	}
}

// TestHoldStalledTarget: a target stuck in one write for StallTimeout ends
// the hold; from then on Hold returns nil and a full buffer drops, until the
// write returns, when Hold holds again.
func TestHoldStalledTarget(t *testing.T) {
	const buffer, stall = 10, 50 * time.Millisecond
	mt := &memTarget{}
	gt := newGatedTarget(mt)
	errOut := &lockedBuffer{}
	s, err := openWith(Config{Buffer: buffer, StallTimeout: stall}, gt, errOut)
	if err != nil {
		t.Fatal(err)
	}
	s.WorkerLine("d", 1, StreamStdout, []byte("first"))
	waitDone(t, "first write", gt.entered)
	for range buffer {
		s.WorkerLine("d", 1, StreamStdout, []byte("x"))
	}
	start := time.Now()
	hold := s.Hold()
	if hold == nil {
		t.Fatal("not held with a full buffer")
	}
	waitDone(t, "the end of the hold of a stuck target", hold)
	if held := time.Since(start); held < stall/2 {
		t.Errorf("hold ended after %v, before the stall timeout %v", held, stall)
	}
	if s.Hold() != nil {
		t.Error("held while the target is stuck")
	}
	if !strings.Contains(errOut.String(), "no longer holding") {
		t.Errorf("stall not reported: %q", errOut.String())
	}
	s.WorkerLine("d", 1, StreamStdout, []byte("dropped"))
	if d := s.Dropped(); d != 1 {
		t.Errorf("dropped %d, want 1", d)
	}
	close(gt.gate)
	waitFor(t, "the buffer written", func() bool { return len(mt.lines()) >= buffer+1 })
	closeSink(t, s)
	if d := s.Dropped(); d != 1 {
		t.Errorf("dropped %d in all, want 1", d)
	}
	if s.Hold() != nil {
		t.Error("held after Close")
	}
}

// TestHoldAfterStallRecovers: once a stuck write returns, the next time
// the buffer is past the high-water mark Hold holds again.
func TestHoldAfterStallRecovers(t *testing.T) {
	const buffer, stall = 10, 20 * time.Millisecond
	mt := &memTarget{}
	gt := &switchTarget{target: mt, gate: make(chan chan struct{}, 1), entered: make(chan struct{}, 1)}
	s, _ := openTest(t, Config{Buffer: buffer, StallTimeout: stall}, gt)
	stuck, stuck2 := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { // before Close, if the test fails
		closeOnce(stuck)
		closeOnce(stuck2)
	})
	gt.gate <- stuck // the next write blocks until stuck is closed
	s.WorkerLine("d", 1, StreamStdout, []byte("first"))
	waitDone(t, "the first write", gt.entered)
	for range buffer {
		s.WorkerLine("d", 1, StreamStdout, []byte("x"))
	}
	hold := s.Hold()
	if hold == nil {
		t.Fatal("not held")
	}
	waitDone(t, "the stall", hold)
	if s.Hold() != nil {
		t.Fatal("held while stalled")
	}
	gt.gate <- stuck2 // the write after the stuck one blocks too, but has begun after it returned
	close(stuck)
	waitDone(t, "the second write", gt.entered)
	if s.Hold() == nil {
		t.Error("not held again once the target made progress")
	}
	close(stuck2)
	closeSink(t, s)
	if n, d := len(mt.lines()), s.Dropped(); n != buffer+1 || d != 0 {
		t.Errorf("%d lines, %d dropped; want %d, 0", n, d, buffer+1)
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// switchTarget blocks a Write on each channel sent to gate, until it is
// closed, sending on entered when it does; without one waiting, writes go
// through.
type switchTarget struct {
	target
	gate    chan chan struct{}
	entered chan struct{}
}

func (g *switchTarget) Write(e *entry, p []byte) error {
	select {
	case c := <-g.gate:
		g.entered <- struct{}{}
		<-c
	default:
	}
	return g.target.Write(e, p)
}

// TestMasterRecordsNotHeld: past the high-water mark, with the target
// stuck, the master's records still go into the buffer's headroom at once;
// only when it is full are they dropped, never waited for.
func TestMasterRecordsNotHeld(t *testing.T) {
	const buffer = 100
	mt := &memTarget{}
	gt := newGatedTarget(mt)
	s, _ := openTest(t, Config{Buffer: buffer, StallTimeout: time.Hour}, gt)
	s.WorkerLine("d", 1, StreamStdout, []byte("first"))
	waitDone(t, "first write", gt.entered)
	for i := range buffer / 2 {
		s.WorkerLine("d", 1, StreamStdout, []byte(strconv.Itoa(i)))
	}
	if s.Hold() == nil {
		t.Fatal("not held")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range buffer {
			s.Logger().Info("master", "n", i)
		}
	}()
	waitDone(t, "master records while held", done)
	if d := s.Dropped(); d != buffer/2 {
		t.Errorf("dropped %d, want the %d that did not fit", d, buffer/2)
	}
	close(gt.gate)
	closeSink(t, s)
	masters := 0
	for _, r := range parseLines(t, mt.lines()) {
		if r.Message == "master" {
			masters++
		}
	}
	if masters != buffer/2 {
		t.Errorf("%d master records written, want %d", masters, buffer/2)
	}
}

// TestWriteBatchRotates: a batch is split where a record would take the
// file past MaxSize, so each file holds as many whole records as fit.
func TestWriteBatchRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nsfd.log")
	ft, err := openFileTarget(path, 35, 10) // 3 records of 10 bytes a file
	if err != nil {
		t.Fatal(err)
	}
	var p []byte
	var ends []int
	for i := range 10 {
		p = fmt.Appendf(p, "record %02d\n", i)
		ends = append(ends, len(p))
	}
	n, err := ft.WriteBatch(p, ends)
	if err != nil || n != 10 {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	if err := ft.Close(); err != nil {
		t.Fatal(err)
	}
	for i, f := range []string{path + ".3", path + ".2", path + ".1", path} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(strings.ReplaceAll(string(b), "record ", ""))
		wantFile := []string{"00 01 02", "03 04 05", "06 07 08", "09"}[i]
		if strings.Join(got, " ") != wantFile {
			t.Errorf("%s: %q, want %q", f, got, wantFile)
		}
	}
}

// TestFirstHoldEndingAtOnce: a reader that saw the buffer past its
// high-water mark, while the writer took it down to the low-water mark
// before the reader's hold began, gets no hold, and the Sink does not
// crash: the first hold has no stall timer yet (the pump's goroutine
// panicked there once, in a prefork test).
func TestFirstHoldEndingAtOnce(t *testing.T) {
	s, _ := openTest(t, Config{Buffer: 100, StallTimeout: time.Hour}, &memTarget{})
	s.held.Store(true) // as a reader finds it past the mark; the buffer is empty now
	if h := s.Hold(); h != nil {
		t.Error("held with an empty buffer")
	}
	s.WorkerLine("d", 1, StreamStdout, []byte("after"))
}
