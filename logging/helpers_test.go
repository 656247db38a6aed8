package logging

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// openTest opens a Sink with target t (a file in a temporary directory when
// t is nil) and closes it at the end of the test. It returns the file's path.
func openTest(tb testing.TB, cfg Config, t target) (*Sink, string) {
	tb.Helper()
	path := ""
	if t == nil {
		path = tb.TempDir() + "/log/nsfd.log"
		ft, err := openFileTarget(path, cfg.MaxSize, cfg.MaxFiles)
		if err != nil {
			tb.Fatal(err)
		}
		t = ft
	}
	s, err := openWith(cfg, t, &lockedBuffer{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s, path
}

// closeSink closes s, failing the test if that takes longer than 30s.
func closeSink(tb testing.TB, s *Sink) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		tb.Fatalf("close: %v", err)
	}
}

// readLines returns the lines of the file at path.
func readLines(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return lines
}

// parseLines parses every line, failing the test for a line that is not a
// record.
func parseLines(tb testing.TB, lines []string) []Record {
	tb.Helper()
	recs := make([]Record, len(lines))
	for i, l := range lines {
		r, ok := ParseRecord([]byte(l))
		if !ok {
			tb.Fatalf("line %d is not a record: %q", i+1, l)
		}
		recs[i] = r
	}
	return recs
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// waitDone fails the test if done is not closed within 30s.
func waitDone(tb testing.TB, what string, done <-chan struct{}) {
	tb.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		tb.Fatalf("%s blocked", what)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// memTarget keeps the records in memory.
type memTarget struct {
	mu      sync.Mutex
	b       bytes.Buffer
	reopens int
	closed  bool
}

var _ target = (*memTarget)(nil)

func (t *memTarget) Write(_ *entry, p []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	return nil
}

func (t *memTarget) Reopen() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reopens++
	return nil
}

func (t *memTarget) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return nil
}

func (t *memTarget) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := bytes.TrimSuffix(t.b.Bytes(), []byte{'\n'})
	if len(s) == 0 {
		return nil
	}
	var lines []string
	for l := range bytes.SplitSeq(s, []byte{'\n'}) {
		lines = append(lines, string(l))
	}
	return lines
}

// gatedTarget stalls: its Write blocks until gate is closed.
type gatedTarget struct {
	target
	gate    chan struct{}
	entered chan struct{} // closed when the first Write begins
	once    sync.Once
}

func newGatedTarget(t target) *gatedTarget {
	return &gatedTarget{target: t, gate: make(chan struct{}), entered: make(chan struct{})}
}

func (g *gatedTarget) Write(e *entry, p []byte) error {
	g.once.Do(func() { close(g.entered) })
	<-g.gate
	return g.target.Write(e, p)
}
