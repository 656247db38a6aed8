package bench

// Counting and checking the lines of a log-shipping burst: the marks
// appended to a file, and each (worker, seq) parsed back.

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
)

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
