package logging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeMixed writes records 0..n-1 through s: record i is a line of worker
// echo[100] when i%10 == 0, a master record of daemon echo (module nsfd.echo)
// when i%10 == 5, and a line of another daemon or a root master record
// otherwise. Every message ends in "#i".
func writeMixed(s *Sink, from, n int) {
	echo := s.Logger().Named("echo")
	for i := from; i < from+n; i++ {
		msg := "#" + strconv.Itoa(i)
		switch i % 10 {
		case 0:
			s.WorkerLine("echo", 100, StreamStdout, []byte("echo "+msg))
		case 5:
			echo.Info("echo master " + msg)
		case 3:
			s.Logger().Info("root " + msg)
		case 7:
			s.Logger().Named("echoes").Info("not echo " + msg)
		default:
			s.WorkerLine("other", 200, StreamStderr, []byte("other "+msg))
		}
	}
}

// isEcho tells the records of daemon echo among those of writeMixed.
func isEcho(i int) bool { return i%10 == 0 || i%10 == 5 }

// recordID returns the i of a record of writeMixed.
func recordID(tb testing.TB, rec Record) int {
	tb.Helper()
	_, n, ok := strings.Cut(rec.Message, "#")
	i, err := strconv.Atoi(n)
	if !ok || err != nil {
		tb.Fatalf("record %+v is not one of writeMixed's", rec)
	}
	return i
}

// tailAll runs Tail without Follow and returns the ids of what it emitted.
func tailAll(tb testing.TB, path string, o FollowOptions) []int {
	tb.Helper()
	var ids []int
	err := Tail(context.Background(), path, o, func(line []byte, rec Record) error {
		if r, ok := ParseRecord(line); !ok || r.Message != rec.Message || r.Daemon != rec.Daemon {
			tb.Fatalf("emitted %q with record %+v", line, rec)
		}
		if o.Daemon != "" && rec.Daemon != o.Daemon {
			tb.Fatalf("daemon filter %q let %+v through", o.Daemon, rec)
		}
		ids = append(ids, recordID(tb, rec))
		return nil
	})
	if err != nil {
		tb.Fatalf("tail: %v", err)
	}
	return ids
}

// lastIDs returns the last n of the ids in [from, to) that keep says to.
func lastIDs(from, to, n int, keep func(int) bool) []int {
	var ids []int
	for i := to - 1; i >= from && (n < 0 || len(ids) < n); i-- {
		if keep(i) {
			ids = append(ids, i)
		}
	}
	slices.Reverse(ids)
	return ids
}

// TestTailLast: the last N records, with and without the daemon filter, in
// both formats, reaching back over several blocks.
func TestTailLast(t *testing.T) {
	const total = 3000 // about 150 KB: three blocks
	all := func(int) bool { return true }
	for _, format := range []string{FormatText, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			s, path := openTest(t, Config{Format: format}, nil)
			writeMixed(s, 0, total)
			closeSink(t, s)
			for _, tt := range []struct {
				lines  int
				daemon string
				want   []int
			}{
				{0, "", nil},
				{1, "", []int{total - 1}},
				{5, "echo", lastIDs(0, total, 5, isEcho)},
				{5, "", lastIDs(0, total, 5, all)},
				{400, "echo", lastIDs(0, total, 400, isEcho)},
				{600, "echo", lastIDs(0, total, 600, isEcho)},
				{1000, "echo", lastIDs(0, total, -1, isEcho)},
				{-1, "echo", lastIDs(0, total, -1, isEcho)},
				{-1, "", lastIDs(0, total, -1, all)},
				{2500, "", lastIDs(0, total, 2500, all)},
				{5, "nosuch", nil},
			} {
				got := tailAll(t, path, FollowOptions{Lines: tt.lines, Daemon: tt.daemon})
				if !slices.Equal(got, tt.want) {
					t.Errorf("-n %d --daemon %q: got %d records %v..., want %d %v...",
						tt.lines, tt.daemon, len(got), got[:min(len(got), 5)], len(tt.want), tt.want[:min(len(tt.want), 5)])
				}
			}
		})
	}
}

// TestTailLastRotated: with fewer matching records in the current file
// than asked for, the rest come from path.1.
func TestTailLastRotated(t *testing.T) {
	const total = 3000
	s, path := openTest(t, Config{MaxSize: 32 << 10, MaxFiles: 3}, nil)
	writeMixed(s, 0, total)
	closeSink(t, s)
	first := func(file string) int {
		return recordID(t, parseLines(t, readLines(t, file))[0])
	}
	inCurrent, inPrev := total-first(path), first(path)-first(path+".1")
	nEcho := len(lastIDs(first(path), total, -1, isEcho))
	for _, n := range []int{nEcho - 1, nEcho, nEcho + 1, nEcho + 50, 10000} {
		got := tailAll(t, path, FollowOptions{Lines: n, Daemon: "echo"})
		want := lastIDs(first(path+".1"), total, n, isEcho)
		if !slices.Equal(got, want) {
			t.Errorf("-n %d: got %v, want %v", n, got, want)
		}
	}
	got := tailAll(t, path, FollowOptions{Lines: inCurrent + 10})
	if want := lastIDs(0, total, inCurrent+10, func(int) bool { return true }); !slices.Equal(got, want) {
		t.Errorf("-n %d: got %v, want %v", inCurrent+10, got, want)
	}
	t.Logf("%d records in the file, %d in .1", inCurrent, inPrev)
}

// TestTailLastPartial: without Follow, a last line without its newline is
// shown; with Follow it waits for its newline. Lines that are not records
// pass when there is no filter.
func TestTailLastPartial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("first\n\nsecond\nthird, unfinished"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := Tail(context.Background(), path, FollowOptions{Lines: 3}, func(line []byte, rec Record) error {
		if rec.Message != "" || !rec.Time.IsZero() {
			t.Errorf("record %+v of a foreign line", rec)
		}
		got = append(got, string(line))
		return nil
	})
	if err != nil || strings.Join(got, "|") != "|second|third, unfinished" {
		t.Errorf("got %q, %v", got, err)
	}

	f := startTail(t, path, FollowOptions{Lines: 3, Follow: true})
	f.wait(t, 3)
	appendFile(t, path, " at last\nfourth\n")
	f.wait(t, 5)
	if got := f.got(); strings.Join(got, "|") != "first||second|third, unfinished at last|fourth" {
		t.Errorf("following: %q", got)
	}
}

// TestTailErrors: a missing file without Follow, and emit's error.
func TestTailErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if err := Tail(context.Background(), missing, FollowOptions{Lines: 5}, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	for _, o := range []FollowOptions{{Lines: 1}, {Lines: -1}, {Lines: -1, Follow: true}} {
		if err := Tail(context.Background(), path, o, func([]byte, Record) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("%+v: %v, want emit's error", o, err)
		}
	}
}

// follower runs Tail in the background and collects what it emits.
type follower struct {
	mu       sync.Mutex
	lines    []string
	progress chan struct{} // a token after each line
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
}

// startTail follows path until the end of the test.
func startTail(tb testing.TB, path string, o FollowOptions) *follower {
	tb.Helper()
	if o.Poll == 0 {
		o.Poll = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{progress: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.err = Tail(ctx, path, o, func(line []byte, _ Record) error {
			f.mu.Lock()
			f.lines = append(f.lines, string(line))
			f.mu.Unlock()
			select {
			case f.progress <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	tb.Cleanup(func() { f.stop(tb) })
	return f
}

// stop cancels Tail and checks it returned nil.
func (f *follower) stop(tb testing.TB) {
	tb.Helper()
	f.cancel()
	waitDone(tb, "tail to return", f.done)
	if f.err != nil {
		tb.Errorf("tail: %v", f.err)
	}
}

func (f *follower) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

func (f *follower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lines)
}

// wait waits until the follower has n lines.
func (f *follower) wait(tb testing.TB, n int) {
	tb.Helper()
	waitFor(tb, fmt.Sprintf("%d lines followed", n), func() bool { return f.count() >= n })
}

// waitBehind blocks until the follower is at most lag lines behind written,
// failing the test after 10s without progress.
func (f *follower) waitBehind(tb testing.TB, written, lag int) {
	tb.Helper()
	for f.count() < written-lag {
		select {
		case <-f.progress:
		case <-time.After(10 * time.Second):
			select {
			case <-f.done:
				tb.Fatalf("tail returned %v after %d lines of %d", f.err, f.count(), written)
			default:
			}
			tb.Fatalf("follower stuck at %d lines of %d", f.count(), written)
		}
	}
}

// checkSequence checks that lines are worker lines "n i" for i = 0..n-1, each
// once, in order.
func checkSequence(tb testing.TB, lines []string, n int) {
	tb.Helper()
	if len(lines) != n {
		tb.Errorf("%d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		r, ok := ParseRecord([]byte(l))
		if want := "n " + strconv.Itoa(i); !ok || r.Message != want {
			tb.Fatalf("line %d: %q, want message %q", i, l, want)
		}
	}
}

func appendFile(tb testing.TB, path, s string) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		tb.Fatal(err)
	}
}

// TestTailFollow: following a file the Sink writes, which does not exist
// when Tail starts (nor does its directory), with the daemon filter.
func TestTailFollow(t *testing.T) {
	const total = 2000
	path := filepath.Join(t.TempDir(), "log", "nsfd.log")
	all := startTail(t, path, FollowOptions{Lines: -1, Follow: true})
	echo := startTail(t, path, FollowOptions{Lines: -1, Follow: true, Daemon: "echo"})
	ft, err := openFileTarget(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openTest(t, Config{}, ft)
	writeMixed(s, 0, total)
	all.wait(t, total)
	echo.wait(t, total/5)
	writeMixed(s, total, 10)
	all.wait(t, total+10)
	echo.wait(t, total/5+2)
	closeSink(t, s)

	for name, f := range map[string]*follower{"all": all, "echo": echo} {
		var ids []int
		for _, l := range f.got() {
			r, _ := ParseRecord([]byte(l))
			ids = append(ids, recordID(t, r))
		}
		want := lastIDs(0, total+10, -1, func(int) bool { return true })
		if name == "echo" {
			want = lastIDs(0, total+10, -1, isEcho)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s: %d records, want %d", name, len(ids), len(want))
		}
	}
}

// TestTailFollowLogrotate: the follower goes on across logrotate's rename
// and the Sink's Reopen, while the Sink keeps writing, losing and repeating
// no line: the old file is read to its end before the new one. With
// "create", logrotate makes the new file before the master reopens, and
// the follower must not leave the old file for it too soon. Rotations come
// spread over the writing, or back to back, leaving empty files behind.
func TestTailFollowLogrotate(t *testing.T) {
	const total, rotations = 30000, 5
	for _, tt := range []struct {
		name       string
		create     bool
		backToBack bool
	}{
		{"rename", false, false},
		{"create", true, false},
		{"rename back to back", false, true},
		{"create back to back", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openTest(t, Config{Buffer: total}, nil)
			f := startTail(t, path, FollowOptions{Lines: -1, Follow: true})
			var written sync.WaitGroup
			written.Go(func() {
				for i := range total {
					s.WorkerLine("d", 1, StreamStdout, []byte("n "+strconv.Itoa(i)))
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for r := 1; r <= rotations; r++ {
				if !tt.backToBack || r == 1 {
					f.wait(t, r*total/(rotations+1))
				}
				// logrotate: path.N -> path.N+1, ..., path -> path.1,
				// maybe create path, then postrotate signals the master.
				for k := r - 1; k >= 1; k-- {
					if err := os.Rename(fmt.Sprintf("%s.%d", path, k), fmt.Sprintf("%s.%d", path, k+1)); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				if tt.create {
					appendFile(t, path, "")
				}
				if err := s.Reopen(ctx); err != nil {
					t.Fatal(err)
				}
			}
			written.Wait()
			f.wait(t, total)
			closeSink(t, s)
			if d := s.Dropped(); d != 0 {
				t.Errorf("dropped %d", d)
			}
			checkSequence(t, f.got(), total)
		})
	}
}

// TestTailFollowSizeRotation: the follower goes on across the Sink's own
// size rotation, many times over, losing and repeating no line. The writer
// stays less than a file ahead of the follower: a follower more than
// MaxFiles rotations behind would find its next file removed.
func TestTailFollowSizeRotation(t *testing.T) {
	const total, maxSize, maxFiles = 20000, 8 << 10, 3
	dir := t.TempDir()
	path := filepath.Join(dir, "nsfd.log")
	f := startTail(t, path, FollowOptions{Lines: -1, Follow: true})
	ft, err := openFileTarget(path, maxSize, maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openTest(t, Config{MaxSize: maxSize, MaxFiles: maxFiles}, ft)
	// A line is about 44 bytes, a file about 186 lines: the writer is no
	// more than 110 lines ahead.
	const lag = 100
	for i := range total {
		s.WorkerLine("d", 1, StreamStdout, []byte("n "+strconv.Itoa(i)))
		if i%10 == 0 {
			f.waitBehind(t, i, lag)
		}
	}
	f.wait(t, total)
	closeSink(t, s)
	checkSequence(t, f.got(), total)
	if _, err := os.Stat(fmt.Sprintf("%s.%d", path, maxFiles)); err != nil {
		t.Errorf("the file was not rotated %d times: %v", maxFiles, err)
	}
}

// TestTailFollowTruncate: after copytruncate, the follower starts again from
// the beginning of the file.
func TestTailFollowTruncate(t *testing.T) {
	s, path := openTest(t, Config{}, nil)
	for i := range 100 {
		s.WorkerLine("d", 1, StreamStdout, []byte("n "+strconv.Itoa(i)))
	}
	f := startTail(t, path, FollowOptions{Lines: -1, Follow: true})
	f.wait(t, 100)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		s.WorkerLine("d", 1, StreamStdout, []byte("after "+strconv.Itoa(i)))
	}
	f.wait(t, 110)
	closeSink(t, s)
	got := f.got()
	checkSequence(t, got[:100], 100)
	for i, l := range got[100:] {
		if r, _ := ParseRecord([]byte(l)); r.Message != "after "+strconv.Itoa(i) {
			t.Errorf("line %d after truncation: %q", i, l)
		}
	}
	if len(got) != 110 {
		t.Errorf("%d lines, want 110", len(got))
	}
}

// TestScanBackward: lines from the last to the first, whatever the block
// boundaries.
func TestScanBackward(t *testing.T) {
	long := strings.Repeat("x", tailBlock+10)
	for _, in := range []string{"", "\n", "a", "a\n", "a\nb", "\n\na\n\n", long + "\n" + long, "a\n" + long + "\nb\n"} {
		var got []string
		err := scanBackward(strings.NewReader(in), int64(len(in)), func(line []byte) bool {
			got = append(got, string(line))
			return true
		})
		want := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
		if in == "" {
			want = nil
		}
		slices.Reverse(want)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%.20q: got %.40q, want %.40q", in, got, want)
		}
	}
}
