package supervisor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// A daemon whose listener's address is in use when it starts (at the
// master's start, or added by a reload) is not failed for good: it waits,
// state "waiting" with the address and the error in status, and the
// master binds again after a back-off that doubles from portRetryInitial
// to portRetryMax, for as long as it takes or until its file changes
// (which tries at once) or it is stopped or removed. Once the address is
// free the daemon starts by itself. The log says it once per change of
// address or error, and when the daemon starts.

const (
	// portRetryInitial is the first wait before a busy address is tried again.
	portRetryInitial = 500 * time.Millisecond
	// portRetryMax bounds the wait between two tries.
	portRetryMax = 30 * time.Second
)

// portBackoff is the wait before try attempt+1 of a busy address
// (attempt 0 is the first failure): portRetryInitial doubled attempt
// times, at most portRetryMax.
func portBackoff(attempt int) time.Duration {
	d := portRetryInitial
	for i := 0; i < attempt && d < portRetryMax; i++ {
		d *= 2
	}
	return min(d, portRetryMax)
}

// busyPortError is bindListeners' error for an address in use.
type busyPortError struct {
	addr string // as the file says it: 127.0.0.1:7000
	err  error
}

func (e *busyPortError) Error() string { return e.err.Error() }
func (e *busyPortError) Unwrap() error { return e.err }

// busyPort wraps err, a bind error of addr, as a busyPortError when the
// address is in use.
func busyPort(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return &busyPortError{addr: addr, err: err}
	}
	return err
}

// portWait is a daemon waiting for an address of its to be free.
type portWait struct {
	addr    string
	why     string // "address already in use"
	attempt int    // failed tries so far, less one
	next    time.Time
	since   time.Time // the first try that failed
	timer   *time.Timer
}

// reason is the wait as status shows it.
func (pw *portWait) reason(now time.Time) string {
	in := max(pw.next.Sub(now), 0)
	if in < time.Second {
		in = in.Round(100 * time.Millisecond)
	} else {
		in = in.Round(time.Second)
	}
	return fmt.Sprintf("waiting for %s: %s, next try in %s", pw.addr, pw.why, in)
}

// cancelPortWait stops d's wait for its address, if any.
func (d *daemon) cancelPortWait() {
	if d.portWait != nil {
		d.portWait.timer.Stop()
		d.portWait = nil
	}
}

// startOrWait starts dm, on Run's goroutine; if an address of its is in
// use it waits for it (waitPort) and returns nil. Any other error is
// returned, and dm does not wait.
func (s *Supervisor) startOrWait(ctx context.Context, dm *daemon) error {
	err := s.startDaemon(ctx, dm)
	var busy *busyPortError
	switch {
	case err == nil:
		if dm.portWait != nil {
			s.log.Named(dm.cfg.Name).Info("address free; daemon started", "address", dm.portWait.addr)
		}
		dm.cancelPortWait()
		return nil
	case errors.As(err, &busy):
		s.waitPort(ctx, dm, busy)
		return nil
	}
	dm.cancelPortWait()
	return err
}

// waitPort makes dm wait for busy's address: it tries again after the
// next back-off.
func (s *Supervisor) waitPort(ctx context.Context, dm *daemon, busy *busyPortError) {
	why := busy.err.Error()
	var errno syscall.Errno
	if errors.As(busy.err, &errno) {
		why = errno.Error()
	}
	old := dm.portWait
	attempt, since := 0, time.Now()
	if old != nil {
		old.timer.Stop()
		attempt, since = old.attempt+1, old.since
	}
	delay := portBackoff(attempt)
	pw := &portWait{addr: busy.addr, why: why, attempt: attempt, next: time.Now().Add(delay), since: since}
	if old == nil || old.addr != pw.addr || old.why != pw.why {
		s.log.Named(dm.cfg.Name).Warn("address in use; waiting for it, trying again with back-off", "address", pw.addr, "error", busy.err)
	}
	pw.timer = time.AfterFunc(delay, func() {
		_ = s.do(ctx, func(runCtx context.Context) {
			if dm.portWait != pw || s.daemons[dm.cfg.Name] != dm || dm.pool != nil || dm.draining {
				return // stopped, removed, changed or started meanwhile
			}
			if err := s.startOrWait(runCtx, dm); err != nil { // no longer busy, but failing: status says why
				dm.configErr = err
				s.log.Named(dm.cfg.Name).Error("cannot start daemon", "error", err)
			}
		})
	})
	dm.portWait = pw
}
