package logging

import (
	"context"
	"time"
)

// Flush returns once every record buffered before the call has been
// handed to the target (a master about to re-execute itself in place,
// whose writer goroutine will not survive the exec), or with ctx's error.
// It polls: the writer has no one to tell, and a flush is rare.
func (s *Sink) Flush(ctx context.Context) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	idle := 0
	for idle < 2 { // two looks in a row: a record between dequeue and write is not missed
		if len(s.queue) == 0 && s.bytes.Load() == 0 && s.busySince.Load() == 0 {
			idle++
		} else {
			idle = 0
		}
		select {
		case <-t.C:
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Pending returns the incomplete line the LineWriter holds (nil if none),
// for a master that hands its workers' pipes to the binary it re-executes:
// the new LineWriter is given it first, so that a line read half before
// the exec and half after is still one line.
func (w *LineWriter) Pending() []byte { return w.line }
