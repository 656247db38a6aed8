package logging

import (
	"strconv"
	"strings"
	"testing"
)

// TestLineWriterChunks: a LineWriter writes the records of captureCases
// however the output is cut into writes, down to one byte at a time.
func TestLineWriterChunks(t *testing.T) {
	for _, tt := range captureCases() {
		for _, size := range []int{1, 2, 3, 7, 4096, MaxLineBytes - 1, MaxLineBytes, MaxLineBytes + 1, len(tt.in)} {
			if size < 1 || (size == 1 && len(tt.in) > 4*MaxLineBytes) {
				continue
			}
			t.Run(tt.name+"/"+strconv.Itoa(size), func(t *testing.T) {
				mt := &memTarget{}
				s, _ := openTest(t, Config{}, mt)
				w := s.LineWriter("d", 9, StreamStdout)
				for in := tt.in; len(in) > 0; {
					n := min(size, len(in))
					if m, err := w.Write([]byte(in[:n])); m != n || err != nil {
						t.Fatalf("write: %d, %v", m, err)
					}
					if len(w.line) > MaxLineBytes {
						t.Fatalf("holds %d bytes of an incomplete line", len(w.line))
					}
					in = in[n:]
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				closeSink(t, s)
				checkMessages(t, mt, tt.want)
			})
		}
	}
}

// TestLineWriterHoldsNoIdleBuffer: the buffer of an incomplete line goes
// once the line is complete or closed; a second Close writes nothing.
func TestLineWriterHoldsNoIdleBuffer(t *testing.T) {
	mt := &memTarget{}
	s, _ := openTest(t, Config{}, mt)
	w := s.LineWriter("d", 9, StreamStderr)
	w.Write([]byte("complete\n"))
	if w.line != nil {
		t.Errorf("holds %d bytes after a complete line", cap(w.line))
	}
	w.Write([]byte("part"))
	if string(w.line) != "part" {
		t.Errorf("holds %q, want the incomplete line", w.line)
	}
	w.Write([]byte(strings.Repeat("x", 3*MaxLineBytes) + "\nlast"))
	w.Close()
	if w.line != nil {
		t.Errorf("holds %d bytes after Close", cap(w.line))
	}
	w.Close()
	closeSink(t, s)
	recs := parseLines(t, mt.lines())
	// "complete", then "part" and 3×MaxLineBytes "x" in four pieces, then "last".
	if len(recs) != 6 || recs[0].Message != "complete" || recs[4].Message != "xxxx" || recs[5].Message != "last" || recs[5].Stream != StreamStderr {
		t.Errorf("%d records: %.40v", len(recs), recs)
	}
}
