package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestCaptureConcurrent: lines of many workers captured at once all arrive
// exactly once, in order per worker.
func TestCaptureConcurrent(t *testing.T) {
	const workers, lines = 8, 10000
	for _, format := range []string{FormatText, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			s, path := openTest(t, Config{Format: format, Buffer: workers*lines + 10}, nil)
			var wg sync.WaitGroup
			for w := range workers {
				pr, pw := io.Pipe()
				wg.Go(func() {
					if err := s.Capture(fmt.Sprintf("d%d", w), 1000+w, StreamStdout, pr); err != nil {
						t.Errorf("capture: %v", err)
					}
				})
				go func() {
					// Write in chunks of random size, as a pipe delivers them.
					var all strings.Builder
					for i := range lines {
						fmt.Fprintf(&all, "worker %d line %d\n", w, i)
					}
					b := []byte(all.String())
					rnd := rand.New(rand.NewPCG(uint64(w), 1))
					for len(b) > 0 {
						n := min(len(b), 1+rnd.IntN(300))
						if _, err := pw.Write(b[:n]); err != nil {
							t.Errorf("pipe: %v", err)
							return
						}
						b = b[n:]
					}
					pw.Close()
				}()
			}
			wg.Wait()
			closeSink(t, s)
			if d := s.Dropped(); d != 0 {
				t.Fatalf("dropped %d", d)
			}

			next := make([]int, workers)
			recs := parseLines(t, readLines(t, path))
			for _, r := range recs {
				w := r.PID - 1000
				if w < 0 || w >= workers || r.Daemon != fmt.Sprintf("d%d", w) || r.Stream != StreamStdout {
					t.Fatalf("unexpected record %+v", r)
				}
				if want := fmt.Sprintf("worker %d line %d", w, next[w]); r.Message != want {
					t.Fatalf("worker %d: got %q, want %q", w, r.Message, want)
				}
				next[w]++
			}
			for w, n := range next {
				if n != lines {
					t.Errorf("worker %d: %d lines, want %d", w, n, lines)
				}
			}
		})
	}
}

// TestClose: Close writes everything buffered, is idempotent, and what comes
// after it is dropped.
func TestClose(t *testing.T) {
	mt := &memTarget{}
	s, _ := openTest(t, Config{}, mt)
	for i := range 1000 {
		s.WorkerLine("d", 1, StreamStdout, []byte(strconv.Itoa(i)))
	}
	s.Logger().Info("last")
	closeSink(t, s)
	if n := len(mt.lines()); n != 1001 {
		t.Fatalf("%d lines after Close, want 1001", n)
	}
	if !mt.closed {
		t.Error("target not closed")
	}
	closeSink(t, s)

	s.WorkerLine("d", 1, StreamStdout, []byte("late"))
	s.Logger().Error("late")
	if err := s.Capture("d", 1, StreamStdout, strings.NewReader("a\nb\n")); err != nil {
		t.Errorf("capture after close: %v", err)
	}
	if d := s.Dropped(); d != 4 {
		t.Errorf("dropped %d, want 4", d)
	}
	if err := s.Reopen(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("reopen after close: %v, want ErrClosed", err)
	}
	if n := len(mt.lines()); n != 1001 {
		t.Errorf("%d lines, want 1001", n)
	}
}

// TestCloseStalled: Close gives up at the end of its context when the target
// is stuck, and a later Close still flushes.
func TestCloseStalled(t *testing.T) {
	mt := &memTarget{}
	gt := newGatedTarget(mt)
	s, _ := openTest(t, Config{}, gt)
	s.WorkerLine("d", 1, StreamStdout, []byte("one"))
	s.WorkerLine("d", 1, StreamStdout, []byte("two"))
	waitDone(t, "first write", gt.entered)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("close with a stuck target: %v", err)
	}
	if err := s.Reopen(ctx); err == nil {
		t.Fatal("reopen on a closing sink succeeded")
	}
	close(gt.gate)
	closeSink(t, s)
	if n := len(mt.lines()); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
}

// TestLevel: master records below the level are not written, worker lines
// always are.
func TestLevel(t *testing.T) {
	mt := &memTarget{}
	s, _ := openTest(t, Config{Level: "1"}, mt) // Net::Server's 1: warn
	l := s.Logger().Named("echo")
	l.Debug("debug")
	l.Info("info")
	l.Warn("warn")
	l.Error("error", "err", errors.New("boom"))
	s.WorkerLine("echo", 3, StreamStdout, []byte("worker"))
	closeSink(t, s)

	var got []string
	for _, r := range parseLines(t, mt.lines()) {
		got = append(got, r.Level+" "+r.Daemon+" "+r.Message)
	}
	want := []string{"warn echo warn", "error echo error", "info echo worker"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestWriteFailure: records the target fails to write are counted as dropped
// and the failure is reported once on errOut.
func TestWriteFailure(t *testing.T) {
	ft := &failTarget{}
	var errOut lockedBuffer
	s, err := openWith(Config{}, ft, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s.WorkerLine("d", 1, StreamStdout, []byte("x"))
	}
	closeSink(t, s)
	if d := s.Dropped(); d != 5 {
		t.Errorf("dropped %d, want 5", d)
	}
	if n := strings.Count(errOut.String(), "write failed"); n != 1 {
		t.Errorf("reported %d times: %q", n, errOut.String())
	}
}

type failTarget struct{ memTarget }

func (*failTarget) Write(*entry, []byte) error { return errors.New("disk full") }

// captureCase is a worker's output and the messages its records must have,
// as the text format writes them.
type captureCase struct {
	name, in string
	want     []string
}

// captureCases: final lines without newline, CRLF, long lines, control
// characters.
func captureCases() []captureCase {
	long := strings.Repeat("x", MaxLineBytes)
	// A line whose split point falls inside a 3-byte character.
	runes := strings.Repeat("y", MaxLineBytes-1) + "€z"
	return []captureCase{
		{"plain", "a\nb\n", []string{"a", "b"}},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"empty lines", "\n\na\n", []string{"", "", "a"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"control", "a\tb\x1b[31mc\rd\x7f\n", []string{"a\tb\\x1b[31mc\\rd\\x7f"}},
		{"exactly max", long + "\nnext\n", []string{long, "next"}},
		{"max plus crlf", long + "\r\nnext\n", []string{long, "next"}},
		{"longer", long + "tail\n", []string{long, "tail"}},
		{"longer no newline", long + "tail", []string{long, "tail"}},
		{"two splits", long + long + "t\n", []string{long, long, "t"}},
		{"split in a character", runes + "\n", []string{strings.Repeat("y", MaxLineBytes-1), "€z"}},
	}
}

// checkMessages compares the messages of the records in mt with want.
func checkMessages(t *testing.T, mt *memTarget, want []string) {
	t.Helper()
	var got []string
	for _, r := range parseLines(t, mt.lines()) {
		got = append(got, r.Message)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %.80q", len(got), len(want), got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("record %d: got %.80q, want %.80q", i, got[i], want[i])
		}
	}
}

// TestCaptureLines: Capture writes the records of captureCases.
func TestCaptureLines(t *testing.T) {
	for _, tt := range captureCases() {
		t.Run(tt.name, func(t *testing.T) {
			mt := &memTarget{}
			s, _ := openTest(t, Config{}, mt)
			if err := s.Capture("d", 9, StreamStdout, strings.NewReader(tt.in)); err != nil {
				t.Fatal(err)
			}
			closeSink(t, s)
			checkMessages(t, mt, tt.want)
		})
	}
}

// TestWorkerLineSplit: WorkerLine splits a long line too, at a character
// boundary.
func TestWorkerLineSplit(t *testing.T) {
	mt := &memTarget{}
	s, _ := openTest(t, Config{Format: FormatJSON}, mt)
	line := strings.Repeat("é", MaxLineBytes) // 2 bytes each: 2 records
	s.WorkerLine("d", 1, StreamStdout, []byte(line))
	closeSink(t, s)
	var got strings.Builder
	recs := parseLines(t, mt.lines())
	for _, r := range recs {
		if len(r.Message) > MaxLineBytes {
			t.Errorf("record of %d bytes", len(r.Message))
		}
		got.WriteString(r.Message)
	}
	if len(recs) != 2 || got.String() != line {
		t.Errorf("%d records, joined equal: %v", len(recs), got.String() == line)
	}
}

// TestCaptureReadError: Capture returns the reader's error.
func TestCaptureReadError(t *testing.T) {
	mt := &memTarget{}
	s, _ := openTest(t, Config{}, mt)
	pr, pw := io.Pipe()
	boom := errors.New("boom")
	go func() {
		pw.Write([]byte("partial"))
		pw.CloseWithError(boom)
	}()
	if err := s.Capture("d", 1, StreamStdout, pr); !errors.Is(err, boom) {
		t.Errorf("capture: %v, want boom", err)
	}
	closeSink(t, s)
	if lines := mt.lines(); len(lines) != 1 || !strings.HasSuffix(lines[0], "stdout: partial") {
		t.Errorf("lines %q", lines)
	}
}

// TestOpenConfig: defaults and validation.
func TestOpenConfig(t *testing.T) {
	bad := []Config{
		{Target: "file"},
		{Target: "syslog", SyslogFacility: "local9"},
		{Target: "syslog", SyslogAddr: "tcp://host"},
		{Target: "syslog", SyslogAddr: "unix://dev/log"},
		{Target: "kafka"},
		{Format: "xml"},
		{Level: "loud"},
		{MaxSize: -1},
		{Buffer: -1},
	}
	for _, cfg := range bad {
		if s, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Open(%+v): %v, want ErrInvalidConfig", cfg, err)
			if s != nil {
				closeSink(t, s)
			}
		}
	}

	dir := filepath.Join(t.TempDir(), "var", "log")
	path := filepath.Join(dir, "nsfd.log")
	s, err := Open(Config{File: path})
	if err != nil {
		t.Fatal(err)
	}
	s.Logger().Info("hello")
	closeSink(t, s)
	for p, perm := range map[string]os.FileMode{dir: 0o750, path: 0o640} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^perm != 0 {
			t.Errorf("%s: mode %v, want at most %v", p, fi.Mode().Perm(), perm)
		}
	}
	if lines := readLines(t, path); len(lines) != 1 || !strings.HasSuffix(lines[0], "[INFO]  nsfd: hello") {
		t.Errorf("lines %q", lines)
	}

	s, err = Open(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.target.(*streamTarget); !ok {
		t.Errorf("zero config: target %T, want stderr", s.target)
	}
	closeSink(t, s)
}

// TestParseLevel covers names and Net::Server's numbers.
func TestParseLevel(t *testing.T) {
	for in, want := range map[string]hclog.Level{
		"trace": hclog.Trace, "DEBUG": hclog.Debug, " info ": hclog.Info, "warning": hclog.Warn,
		"error": hclog.Error, "0": hclog.Error, "1": hclog.Warn, "2": hclog.Info, "3": hclog.Info, "4": hclog.Debug,
	} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("5"); err == nil {
		t.Error("ParseLevel(5) succeeded")
	}
}

type discardTarget struct{ memTarget }

func (*discardTarget) Write(*entry, []byte) error { return nil }

// BenchmarkWorkerLine measures what a pipe reader pays per line, with the
// writer formatting and writing in parallel (to a target that discards).
func BenchmarkWorkerLine(b *testing.B) {
	for _, format := range []string{FormatText, FormatJSON} {
		b.Run(format, func(b *testing.B) {
			s, _ := openTest(b, Config{Format: format}, &discardTarget{})
			line := []byte("GET /index.html 200 1234 bytes in 0.4ms")
			b.ReportAllocs()
			for b.Loop() {
				s.WorkerLine("echo", 1234, StreamStdout, line)
			}
			closeSink(b, s)
			b.ReportMetric(float64(s.Dropped()), "dropped")
		})
	}
}

// BenchmarkLogger measures a master record through hclog.
func BenchmarkLogger(b *testing.B) {
	s, _ := openTest(b, Config{}, &discardTarget{})
	l := s.Logger().Named("echo")
	b.ReportAllocs()
	for b.Loop() {
		l.Info("worker started", "pid", 1234, "slot", 3)
	}
	closeSink(b, s)
}
