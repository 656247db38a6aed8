package logging

import (
	"io"
	"os"
)

// target is where the writer goroutine puts records: a file, stderr or
// syslog. Only the writer goroutine calls its methods, so an implementation
// needs no locking.
type target interface {
	// Write writes one record: e, which p holds in the Sink's format (text
	// or json) as one line ending in a newline. A file writes p as it is; a
	// syslog target builds its message from e's level, stream, daemon and
	// pid and from p. Write must not retain e's data or p.
	Write(e *entry, p []byte) error
	// Reopen closes and reopens the underlying file or connection, for
	// logrotate; a target without one returns nil.
	Reopen() error
	// Close releases the target; no method is called after it.
	Close() error
}

// batchTarget is a target that also takes many records in one call; the
// writer goroutine gives such a target every record waiting in the buffer,
// up to maxBatchBytes, at once.
type batchTarget interface {
	target
	// WriteBatch writes the records in p, each in the Sink's format and
	// ending in a newline, record i ending at ends[i]. It returns how many
	// records (from the first) it wrote whole, all of them with a nil error
	// or a warning. It must not retain p or ends.
	WriteBatch(p []byte, ends []int) (int, error)
}

// recordsIn is how many of the records ending at ends lie whole within the
// first n bytes.
func recordsIn(ends []int, n int) int {
	i := 0
	for i < len(ends) && ends[i] <= n {
		i++
	}
	return i
}

// streamTarget writes to an io.Writer it does not own, such as os.Stderr.
type streamTarget struct {
	w io.Writer
}

var _ batchTarget = (*streamTarget)(nil)

func newStderrTarget() *streamTarget { return &streamTarget{w: os.Stderr} }

// Write writes p in one call.
func (t *streamTarget) Write(_ *entry, p []byte) error {
	_, err := t.w.Write(p)
	return err
}

// WriteBatch writes p in one call.
func (t *streamTarget) WriteBatch(p []byte, ends []int) (int, error) {
	n, err := t.w.Write(p)
	return recordsIn(ends, n), err
}

// Reopen does nothing: there is nothing to reopen.
func (t *streamTarget) Reopen() error { return nil }

// Close does nothing: the writer is not the target's to close.
func (t *streamTarget) Close() error { return nil }

// warning is an error from a target that wrote the record all the same: it
// is reported, but the record is not counted as dropped.
type warning struct{ err error }

func (w warning) Error() string { return w.err.Error() }
func (w warning) Unwrap() error { return w.err }
