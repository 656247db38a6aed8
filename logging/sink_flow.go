package logging

// Flow control between the readers of workers' output and the Sink: the
// high and low water marks, the stall of a stuck target, dropped records.

import (
	"fmt"
	"time"
)

// Hold is how a reader of workers' output paces itself to the Sink. It
// returns nil when the Sink takes more records now. Otherwise the buffer is
// past its high-water mark while the target is making progress, and Hold
// returns a channel that is closed once the reader should go on: when the
// buffer is down to its low-water mark, when the target has been stuck in
// one write for Config.StallTimeout (from then on Hold returns nil and what
// does not fit in the buffer is dropped and counted, until the target
// completes a write again), or when the Sink is closed. A reader that waits
// on the channel instead of reading leaves the workers blocked on their full
// pipes, as a slow disk would, rather than their lines dropped.
//
// Writing records never waits for Hold: it only tells a reader when to stop.
func (s *Sink) Hold() <-chan struct{} {
	if !s.held.Load() && !s.aboveHigh() {
		return nil
	}
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	if s.stalled.Load() || s.isClosed() {
		return nil
	}
	if s.holdc == nil {
		s.holdc = make(chan struct{})
		s.held.Store(true)
		if s.belowLow() { // the writer took the buffer down before it saw held
			s.releaseLocked()
			return nil
		}
		wait := s.stallAfter
		if since := s.busySince.Load(); since != 0 {
			wait -= time.Since(time.Unix(0, since))
		}
		if s.stallTimer == nil {
			s.stallTimer = time.AfterFunc(wait, s.checkStall)
		} else {
			s.stallTimer.Reset(wait)
		}
	}
	return s.holdc
}

// aboveHigh reports whether the buffer is past its high-water mark.
func (s *Sink) aboveHigh() bool {
	return len(s.queue) >= s.highRecs || s.bytes.Load() >= s.highBytes
}

// belowLow reports whether the buffer is down to its low-water mark.
func (s *Sink) belowLow() bool {
	return len(s.queue) <= s.lowRecs && s.bytes.Load() <= s.lowBytes
}

func (s *Sink) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// taken is called by the writer when it has taken records of size bytes
// from the buffer: it ends the hold once the buffer is down to the
// low-water mark.
func (s *Sink) taken(size int64) {
	s.bytes.Add(-size)
	if s.held.Load() && s.belowLow() {
		s.release(false)
	}
}

// release ends the current hold, if any, and with stalled set stops holding
// until the target completes a call.
func (s *Sink) release(stalled bool) {
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	if stalled {
		s.stalled.Store(true)
	}
	s.releaseLocked()
}

func (s *Sink) releaseLocked() {
	if s.holdc != nil {
		close(s.holdc)
		s.holdc = nil
		s.held.Store(false)
		if s.stallTimer != nil { // nil if the first hold ended before it was armed
			s.stallTimer.Stop()
		}
	}
}

// checkStall runs when a hold has lasted Config.StallTimeout: if the writer
// has been in one call into the target that long, the target is stuck, and
// the hold ends for good (until the call returns); otherwise it looks again
// when the current call would be stuck.
func (s *Sink) checkStall() {
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	if s.holdc == nil {
		return
	}
	wait := s.stallAfter
	if since := s.busySince.Load(); since != 0 {
		busy := time.Since(time.Unix(0, since))
		if busy >= s.stallAfter {
			s.stalled.Store(true)
			s.releaseLocked()
			fmt.Fprintf(s.errOut, "nsfd: log: a write has not returned for %v, no longer holding workers' output back: lines that do not fit in the buffer are dropped\n", busy.Round(time.Millisecond))
			return
		}
		wait -= busy
	}
	s.stallTimer.Reset(wait)
}

// busy is called by the writer before a call into the target.
func (s *Sink) busy() { s.busySince.Store(time.Now().UnixNano()) }

// progress is called by the writer when a call into the target has returned,
// whether it wrote or failed: the target is not stuck.
func (s *Sink) progress() {
	s.busySince.Store(0)
	if s.stalled.Load() {
		s.holdMu.Lock()
		s.stalled.Store(false)
		s.holdMu.Unlock()
	}
}

// reportDropped writes "N log lines dropped" for the drops not yet reported,
// once the writer has caught up: when the buffer is empty, or when it has
// written a buffer's worth of records since it noticed them (everything that
// was buffered before the drops), or when force is set. A report the target
// failed to write is tried again later, its count growing.
func (s *Sink) reportDropped(force bool, written int) {
	total := s.dropped.Load()
	if total == s.reported {
		s.sinceDrop = 0
		return
	}
	s.sinceDrop += written
	if !force && len(s.queue) > 0 && s.sinceDrop <= cap(s.queue) {
		return
	}
	n := total - s.reported
	s.sinceDrop = 0
	s.direct.Warn(fmt.Sprintf("%d log lines dropped", n), "total", total)
	if s.directOK {
		s.reported = total
	}
}
