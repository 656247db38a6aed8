package logging

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

// Capture reads a worker's stdout or stderr, r, line by line until EOF and
// writes each line as a record of daemon, pid and stream (StreamStdout or
// StreamStderr). A final line without a newline is written too; a line longer
// than MaxLineBytes becomes several records; a trailing "\r" of a CRLF line
// is removed. It blocks: run it in a goroutine of its own. It keeps reading
// whatever happens to the records (dropped, or the Sink closed), so the worker
// never blocks on a full pipe; to stop it sooner, close r. It returns nil at
// EOF, or the read error.
//
// Give the worker the write end of an os.Pipe as its Stdout (an *os.File, so
// os/exec starts no copying goroutine of its own) and close that end in the
// master after Start: Capture then returns once the worker, and any child it
// passed the pipe to, has exited.
func (s *Sink) Capture(daemon string, pid int, stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	var (
		carry []byte // start of a character cut off by the last split
		split bool   // the last record was a piece of a longer line
	)
	for {
		chunk, err := br.ReadSlice('\n')
		data := chunk
		if len(carry) > 0 {
			data = append(carry, chunk...)
		}
		switch {
		case err == nil:
			line := bytes.TrimSuffix(data[:len(data)-1], []byte{'\r'})
			if !split || len(line) > 0 {
				s.WorkerLine(daemon, pid, stream, line)
			}
			carry, split = carry[:0], false
		case errors.Is(err, bufio.ErrBufferFull):
			cut := runeCut(data[:min(len(data), MaxLineBytes)])
			s.WorkerLine(daemon, pid, stream, data[:cut])
			carry, split = append(carry[:0], data[cut:]...), true
		default:
			if len(data) > 0 {
				s.WorkerLine(daemon, pid, stream, data)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
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
