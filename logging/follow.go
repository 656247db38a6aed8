package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultFollowPoll is how often Tail looks at the file when no file system
// event woke it.
const DefaultFollowPoll = time.Second

// maxTailLine bounds a line Tail holds in memory: a longer one ends the look
// back for the last lines, and is cut into pieces when followed.
const maxTailLine = 16 << 20

// tailBlock is what Tail reads at a time.
const tailBlock = 64 << 10

// FollowOptions says what Tail shows.
type FollowOptions struct {
	// Lines is how many of the last matching records to show first (-n):
	// 0 none, -1 all of the file.
	Lines int
	// Follow keeps showing records as they are appended (-f), until the
	// context ends.
	Follow bool
	// Daemon, if set, keeps only the records of that daemon, as
	// ParseRecord reads them: its master records (module nsfd.NAME) and
	// its workers' lines (NAME[pid]). Lines that are not records are
	// dropped too. Empty keeps every line.
	Daemon string
	// Match, if set, keeps only the records it returns true for (and
	// drops the lines that are not records), after the Daemon filter.
	Match func(Record) bool
	// Poll is how often to look at the file in case no file system event
	// came; default DefaultFollowPoll.
	Poll time.Duration
}

// Tail shows the central log at path, as `nsfd logs` does: it calls emit
// for each line (without its newline; valid only during the call) with the
// Record ParseRecord made of it, the zero Record for a line that is not one.
//
// It first shows the last o.Lines matching lines of the file, reading it
// backwards from its end a block at a time; if the file has fewer, it looks
// for the rest in path.1, the file rotated before it. With o.Follow it then
// shows lines as they are appended, like `tail -F`, until ctx ends: a line is
// shown once its newline is written. It follows the file across
//
//   - a rename and a new file, as logrotate does before signalling the master
//     to reopen: it reads the old file until the new one has data, since the
//     master writes the old one until it reopens;
//   - the Sink's own size rotation (path to path.1, path.1 to path.2, ...):
//     it finds the file that came after the one it was reading, however
//     many rotations ago, as long as it still exists: a follower that falls
//     more than Config.MaxFiles rotations behind skips the files removed
//     in the meantime;
//   - truncation (logrotate's copytruncate): it starts again from the
//     beginning, once it sees the file is shorter than what it read.
//
// It waits for a file that does not exist yet. File system events
// (fsnotify, on the directory) wake it at once; o.Poll is the fallback.
//
// Tail returns nil when ctx ends or, without o.Follow, once it has shown the
// last lines; it returns emit's error, and the file's errors (a missing file
// without o.Follow among them, fs.ErrNotExist).
func Tail(ctx context.Context, path string, o FollowOptions, emit func(line []byte, rec Record) error) error {
	if o.Poll <= 0 {
		o.Poll = DefaultFollowPoll
	}
	t := &tailer{path: path, o: o, emit: emit, buf: make([]byte, tailBlock)}
	defer t.close()
	if err := t.start(ctx); err != nil || !o.Follow || ctx.Err() != nil {
		return err
	}
	return t.follow(ctx)
}

// tailer is the state of one Tail.
type tailer struct {
	path    string
	o       FollowOptions
	emit    func([]byte, Record) error
	f       *os.File // the file being read; nil while there is none
	off     int64    // where the next read of f starts
	pending []byte   // the start of a line whose newline has not come yet
	buf     []byte
}

func (t *tailer) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// tailLine is a matching line held for the last-lines display.
type tailLine struct {
	line []byte
	rec  Record
}

// start opens the file and shows its last lines.
func (t *tailer) start(ctx context.Context) error {
	f, err := os.Open(t.path)
	if err != nil {
		if t.o.Follow && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open log: %w", err)
	}
	t.f = f
	if t.o.Lines < 0 {
		// All of it: read forwards.
		if err := t.read(ctx); err != nil || t.o.Follow {
			return err
		}
		return t.flush()
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat log: %w", err)
	}
	end := fi.Size()
	if t.o.Follow {
		// A partial last line is shown once complete, by follow.
		if end, err = afterLastNewline(f, end); err != nil {
			return err
		}
	}
	t.off = end
	if t.o.Lines == 0 {
		return nil
	}
	recent, err := t.lastMatching(f, end, t.o.Lines)
	if err != nil {
		return err
	}
	var older []tailLine
	if len(recent) < t.o.Lines {
		older = t.olderMatching(fi, t.o.Lines-len(recent))
	}
	for _, lines := range [][]tailLine{older, recent} {
		for i := len(lines) - 1; i >= 0; i-- {
			if err := t.emit(lines[i].line, lines[i].rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// olderMatching returns the last n matching lines of path.1, newest first,
// unless path.1 is the file cur (rotated since Tail opened it). Failing to
// read it is not an error: it is there to complete the picture.
func (t *tailer) olderMatching(cur fs.FileInfo, n int) []tailLine {
	f, err := os.Open(t.path + ".1")
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || os.SameFile(fi, cur) {
		return nil
	}
	lines, _ := t.lastMatching(f, fi.Size(), n)
	return lines
}

// lastMatching returns the last n matching lines of f[:end], newest first.
func (t *tailer) lastMatching(f io.ReaderAt, end int64, n int) ([]tailLine, error) {
	var lines []tailLine
	err := scanBackward(f, end, func(line []byte) bool {
		if rec, ok := t.match(line); ok {
			lines = append(lines, tailLine{bytes.Clone(line), rec})
		}
		return len(lines) < n
	})
	return lines, err
}

// match parses line and reports whether it passes the daemon filter.
func (t *tailer) match(line []byte) (Record, bool) {
	rec, ok := ParseRecord(line)
	if t.o.Daemon != "" && (!ok || rec.Daemon != t.o.Daemon) {
		return rec, false
	}
	return rec, t.o.Match == nil || (ok && t.o.Match(rec))
}

// emitLine emits line if it matches.
func (t *tailer) emitLine(line []byte) error {
	if rec, ok := t.match(line); ok {
		return t.emit(line, rec)
	}
	return nil
}

// read reads t.f from t.off to its end, emitting each complete line and
// keeping the bytes after the last newline in t.pending.
func (t *tailer) read(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := t.f.ReadAt(t.buf, t.off)
		t.off += int64(n)
		data := t.buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				t.pending = append(t.pending, data...)
				break
			}
			line := data[:i]
			if len(t.pending) > 0 {
				t.pending = append(t.pending, line...)
				line = t.pending
			}
			if err := t.emitLine(line); err != nil {
				return err
			}
			t.pending = t.pending[:0]
			data = data[i+1:]
		}
		if len(t.pending) > maxTailLine {
			if err := t.flush(); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF) || (err == nil && n < len(t.buf)):
			return nil
		case err != nil:
			return fmt.Errorf("read log: %w", err)
		}
	}
	return nil
}

// flush emits the pending partial line, if any: the last line of a file that
// will not grow any more, or a piece of an over-long line.
func (t *tailer) flush() error {
	if len(t.pending) == 0 {
		return nil
	}
	err := t.emitLine(t.pending)
	t.pending = t.pending[:0]
	return err
}

// follow shows what is appended until ctx ends.
func (t *tailer) follow(ctx context.Context) error {
	dir := filepath.Dir(t.path)
	base := filepath.Base(t.path)
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	w, err := fsnotify.NewWatcher()
	if err == nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
		_ = w.Add(dir) // a directory that does not exist yet is added on a poll
	}
	tick := time.NewTicker(t.o.Poll)
	defer tick.Stop()
	for {
		if err := t.step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if !strings.HasPrefix(filepath.Base(ev.Name), base) {
					continue // another file of the directory
				}
				// Take the burst of events a busy writer makes in one go.
				for more := true; more; {
					select {
					case _, more = <-events:
					default:
						more = false
					}
				}
				break wait
			case _, ok := <-errs:
				if !ok {
					errs = nil
				}
			case <-tick.C:
				if w != nil {
					// Again, for a directory that was missing or replaced.
					_ = w.Add(dir)
				}
				break wait
			}
		}
	}
}

// step reads what is new, moving on to the next file as often as the file
// being read turns out to be complete.
func (t *tailer) step(ctx context.Context) error {
	for ctx.Err() == nil {
		if t.f == nil {
			f, err := os.Open(t.path)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("open log: %w", err)
			}
			t.f, t.off, t.pending = f, 0, t.pending[:0]
		}
		if err := t.read(ctx); err != nil {
			return err
		}
		moved, err := t.checkFile(ctx)
		if err != nil || !moved {
			return err
		}
	}
	return nil
}

// checkFile looks at what became of the file being read, t.f, after reading
// it to its end. If it is still the file at t.path, it only checks for
// truncation. Otherwise it was rotated or removed, and once the file that
// came after it has data (the writer has moved on, so t.f is complete),
// checkFile reads the rest of t.f and moves to that file. It reports whether
// it changed t.f or t.off, so that there is more to read.
func (t *tailer) checkFile(ctx context.Context) (bool, error) {
	cur, err := t.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat log: %w", err)
	}
	fi, err := os.Stat(t.path)
	switch {
	case err == nil && os.SameFile(fi, cur):
		if cur.Size() < t.off {
			// Truncated: what it holds now is new.
			t.off, t.pending = 0, t.pending[:0]
			return true, nil
		}
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("stat log: %w", err)
	}
	next, current, err := t.successor(cur)
	if next == nil || err != nil {
		return false, err
	}
	ni, err := next.Stat()
	if err != nil || (current && ni.Size() == 0) {
		// The writer may not have moved to it yet: logrotate creates the
		// new file before it signals the master to reopen. (A successor
		// that was rotated in its turn is complete, empty or not.)
		next.Close()
		return false, err
	}
	if err := t.read(ctx); err != nil {
		next.Close()
		return false, err
	}
	if err := t.flush(); err != nil {
		next.Close()
		return false, err
	}
	t.f.Close()
	t.f, t.off = next, 0
	return true, nil
}

// successor opens the file that came after cur, which is no longer at
// t.path. If cur is now path.k, the Sink's size rotation moved it there and
// its successor is path.k-1 (or path): rotation renames the oldest first, so
// the successor is found at path.k-1 as long as cur is still at path.k once
// it is open. Otherwise (logrotate's own naming, or cur was removed) the
// successor is t.path. It returns nil if there is none yet, and whether the
// successor is the file at t.path.
func (t *tailer) successor(cur fs.FileInfo) (next *os.File, current bool, err error) {
	rotated := func(i int) string { return t.path + "." + strconv.Itoa(i) }
	for range 100 {
		k := 0
		// Rotated files are numbered without gaps, but for the one a
		// rotation in progress may have vacated.
		for i, missing := 1, 0; missing < 2; i++ {
			fi, err := os.Stat(rotated(i))
			if err != nil {
				missing++
				continue
			}
			missing = 0
			if os.SameFile(fi, cur) {
				k = i
				break
			}
		}
		name := t.path
		if k > 1 {
			name = rotated(k - 1)
		}
		f, err := os.Open(name)
		switch {
		case errors.Is(err, fs.ErrNotExist) && name == t.path:
			return nil, false, nil
		case errors.Is(err, fs.ErrNotExist):
			continue // vacated by a rotation in progress
		case err != nil:
			return nil, false, fmt.Errorf("open log: %w", err)
		}
		if k == 0 {
			return f, true, nil
		}
		if fi, err := os.Stat(rotated(k)); err == nil && os.SameFile(fi, cur) {
			return f, name == t.path, nil
		}
		f.Close() // rotated again meanwhile: look again
	}
	return nil, false, nil // rotating faster than it can look: try on the next wake-up
}

// afterLastNewline returns the offset just after the last newline of
// f[:end], 0 if there is none.
func afterLastNewline(f io.ReaderAt, end int64) (int64, error) {
	buf := make([]byte, tailBlock)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read log: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// scanBackward calls fn with each line of f[:end], without its newline, from
// the last to the first, until fn returns false. Text after the last newline
// is a line; the empty string after a final newline is not. It reads a block
// at a time, holding no more than the line it is in; a line longer than
// maxTailLine ends the scan.
func scanBackward(f io.ReaderAt, end int64, fn func(line []byte) bool) error {
	var (
		buf  []byte // f[pos:lineEnd], the lines not yet passed to fn
		pos  = end
		last = true // buf ends at end
	)
	for {
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			if line := buf[i+1:]; !last || len(line) > 0 {
				if !fn(line) {
					return nil
				}
			}
			buf, last = buf[:i], false
			continue
		}
		if pos == 0 {
			if !last || len(buf) > 0 {
				fn(buf)
			}
			return nil
		}
		if len(buf) > maxTailLine {
			return nil
		}
		n := min(tailBlock, pos)
		pos -= n
		chunk := make([]byte, n, n+int64(len(buf)))
		if _, err := f.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read log: %w", err)
		}
		buf = append(chunk, buf...)
	}
}
