package worker

import "time"

// loadTimer calls a function once, some time after it is armed: what a
// Load defers its reports with. The function may run after Stop or a later
// Reset, so it must check for itself what is due.
type loadTimer interface {
	// Reset arms the timer to call the function after d, replacing an
	// earlier arming.
	Reset(d time.Duration)
	// Stop disarms the timer.
	Stop()
	// Close stops the timer for good and releases what it holds. A call
	// under way may still finish; Close may wait for it, so it must not be
	// called with a lock the function takes.
	Close()
}

// runtimeTimer is a loadTimer on the Go runtime's timers.
type runtimeTimer struct{ t *time.Timer }

var _ loadTimer = (*runtimeTimer)(nil)

func newRuntimeTimer(f func()) *runtimeTimer {
	t := time.AfterFunc(time.Hour, f)
	t.Stop()
	return &runtimeTimer{t: t}
}

func (r *runtimeTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r *runtimeTimer) Stop()                 { r.t.Stop() }
func (r *runtimeTimer) Close()                { r.t.Stop() }
