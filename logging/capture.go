package logging

import (
	"bytes"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

// LineWriter turns the bytes a worker writes to stdout or stderr into
// records, line by line: each line (without its newline, and without the
// "\r" of a CRLF line) is one record of the daemon, pid and stream the
// LineWriter was made for. A line longer than MaxLineBytes becomes several
// records, cut at UTF-8 character boundaries; a final line without a newline
// is written by Close. Only while a line is incomplete does the LineWriter
// hold it, in a buffer of at most MaxLineBytes it allocates then and lets go
// of once the line is complete; an idle LineWriter holds no buffer.
//
// Write never blocks (records go into the Sink's buffer, or are dropped and
// counted) and does not retain p; the reader paces itself with Hold. A LineWriter is not safe for concurrent
// use: one reader of one stream writes to it.
type LineWriter struct {
	s      *Sink
	daemon string
	pid    int
	stream string
	line   []byte // the incomplete line so far; nil when there is none
	split  bool   // a piece of the current line was written already
}

var _ io.WriteCloser = (*LineWriter)(nil)

// LineWriter returns a LineWriter for one stream (StreamStdout or
// StreamStderr) of the worker pid of daemon. Close it at the stream's EOF.
func (s *Sink) LineWriter(daemon string, pid int, stream string) *LineWriter {
	return &LineWriter{s: s, daemon: daemon, pid: pid, stream: stream}
}

// Write writes every line p completes as a record and keeps what follows
// the last newline of p for the next Write. It always returns len(p), nil.
func (w *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.line = append(w.line, p...)
			w.spill()
			break
		}
		line := p[:i]
		if len(w.line) > 0 {
			line = append(w.line, line...)
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if !w.split || len(line) > 0 { // not the empty end of a line already written in pieces
			w.s.WorkerLine(w.daemon, w.pid, w.stream, line)
		}
		w.line, w.split = nil, false
		p = p[i+1:]
	}
	return n, nil
}

// spill writes the incomplete line's first MaxLineBytes as a record while it
// is longer than that, so that the LineWriter never holds more.
func (w *LineWriter) spill() {
	for len(w.line) > MaxLineBytes {
		cut := runeCut(w.line[:MaxLineBytes])
		w.s.WorkerLine(w.daemon, w.pid, w.stream, w.line[:cut])
		w.line = append(w.line[:0], w.line[cut:]...)
		w.split = true
	}
}

// Hold is the Sink's Hold: nil when the Sink takes more records now, else a
// channel closed when the writer of this LineWriter should read its stream
// again. A reader that stops reading while it is held makes the worker wait
// on its full pipe instead of its lines being dropped.
func (w *LineWriter) Hold() <-chan struct{} { return w.s.Hold() }

// Close writes the final line if it has no newline. It always returns nil;
// calling it again does nothing.
func (w *LineWriter) Close() error {
	if len(w.line) > 0 {
		w.s.WorkerLine(w.daemon, w.pid, w.stream, w.line)
	}
	w.line, w.split = nil, false
	return nil
}

// Capture reads a worker's stdout or stderr, r, until EOF and writes it as
// records through a LineWriter of daemon, pid and stream (StreamStdout or
// StreamStderr): one record a line, a final line without a newline too, a
// line longer than MaxLineBytes as several records, a trailing "\r" of a
// CRLF line removed. It blocks: run it in a goroutine of its own. While the
// Sink holds its readers back (see Sink.Hold) it waits before reading, so a
// worker writing faster than the target takes its lines blocks on its full
// pipe rather than losing them; a stuck target holds it up for
// Config.StallTimeout at most, after which it reads on and what does not fit
// is dropped and counted. It keeps reading until EOF whatever happens to the
// records; to stop it sooner, close r. It returns nil at EOF, or the read
// error.
//
// A master that reads many workers' pipes from one event loop uses a
// LineWriter per stream instead, and no goroutine per stream.
func (s *Sink) Capture(daemon string, pid int, stream string, r io.Reader) error {
	w := s.LineWriter(daemon, pid, stream)
	defer w.Close()
	buf := make([]byte, 32<<10)
	for {
		if hold := s.Hold(); hold != nil {
			<-hold
		}
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

// WorkerLine writes one line of a worker's output (without its newline) as a
// record, or as several if it is longer than MaxLineBytes. It never blocks and
// does not retain line.
func (s *Sink) WorkerLine(daemon string, pid int, stream string, line []byte) {
	now := time.Now()
	for len(line) > MaxLineBytes {
		cut := runeCut(line[:MaxLineBytes])
		s.workerRecord(now, daemon, pid, stream, line[:cut])
		line = line[cut:]
	}
	s.workerRecord(now, daemon, pid, stream, line)
}

func (s *Sink) workerRecord(t time.Time, daemon string, pid int, stream string, line []byte) {
	s.enqueue(entry{time: t, daemon: daemon, pid: pid, stream: stream, data: bytes.Clone(line)})
}

// runeCut returns where to cut p so that it does not end in the first bytes
// of an incomplete UTF-8 character: len(p), or the start of that character.
// It never returns 0, so a cut always makes progress.
func runeCut(p []byte) int {
	for i := len(p) - 1; i > 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}
