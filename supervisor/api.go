package supervisor

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoDaemon is returned for a daemon name the master does not know.
var ErrNoDaemon = errors.New("no such daemon")

// ErrDaemonStopped is returned when an operation needs a running daemon.
var ErrDaemonStopped = errors.New("daemon is stopped")

// Start starts a daemon stopped with Stop.
func (s *Supervisor) Start(ctx context.Context, name string) error {
	var err error
	if derr := s.do(ctx, func(runCtx context.Context) {
		var d *daemon
		// Already running: nothing to do, as systemctl start.
		if d, err = s.settledDaemon("start", name); err == nil && d.pool == nil {
			err = s.startOrHold(runCtx, d)
		}
	}); derr != nil {
		return derr
	}
	return err
}

// Stop drains a daemon and closes its listeners; it stays stopped across
// reloads until Start or Restart.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	var (
		err   error
		wait  chan struct{}
		again bool // a scale to 0 drains it: then its listeners close
	)
	if derr := s.do(ctx, func(context.Context) {
		d := s.daemons[name]
		switch {
		case d == nil:
			err = fmt.Errorf("stop %s: %w", name, ErrNoDaemon)
		case d.draining:
			wait, again = d.drained, d.zero()
		case d.pool == nil: // held, scaled to 0, waiting for its port, or stopped
			s.stopIdle(d)
		default:
			s.drainWithDependents([]*daemon{d}, func(d *daemon) {
				d.pool, d.listeners = nil, nil
				s.reg.remove(d.cfg.Name)
				s.kickGate()
			})
			wait = d.drained
		}
	}); derr != nil {
		return derr
	}
	if err != nil || wait == nil {
		return err
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !again {
		return nil
	}
	return s.do(ctx, func(context.Context) {
		if d := s.daemons[name]; d != nil && d.pool == nil && !d.draining {
			s.stopIdle(d)
		}
	})
}

// Restart rolls a running daemon's workers (new ones first, old ones
// stopped once the new are ready), or starts a stopped one. A fatal daemon
// starts again from scratch.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	var (
		pool Pool
		err  error
	)
	if derr := s.do(ctx, func(runCtx context.Context) {
		var d *daemon
		switch d, err = s.settledDaemon("restart", name); {
		case err != nil:
		case d.pool == nil:
			err = s.startOrHold(runCtx, d)
		default:
			d.cancelRetry()
			pool = d.pool
		}
	}); derr != nil {
		return derr
	}
	if err != nil || pool == nil {
		return err
	}
	return pool.Restart(ctx)
}

// startOrHold starts a daemon that has no pool, or, if it requires
// daemons, leaves that to the gate, which starts it once they run.
func (s *Supervisor) startOrHold(ctx context.Context, d *daemon) error {
	d.unzero() // start undoes a scale to 0
	if len(d.cfg.Requires) == 0 {
		return s.startOrWait(ctx, d) // a busy port waits (portwait.go)
	}
	d.held = true
	s.gate(ctx)
	return nil
}

// settledDaemon returns the daemon name for verb, on Run's goroutine: an
// error wrapping ErrNoDaemon if there is none, or one that says to try
// again while it drains.
func (s *Supervisor) settledDaemon(verb, name string) (*daemon, error) {
	d := s.daemons[name]
	switch {
	case d == nil:
		return nil, fmt.Errorf("%s %s: %w", verb, name, ErrNoDaemon)
	case d.draining:
		return nil, fmt.Errorf("%s %s: still stopping; try again", verb, name)
	}
	return d, nil
}

// ReopenLogs reopens the central log file (logrotate's SIGUSR1).
func (s *Supervisor) ReopenLogs(ctx context.Context) error {
	if err := s.sink.Reopen(ctx); err != nil {
		s.log.Error("reopen log", "error", err)
		return err
	}
	s.log.Info("log reopened")
	return nil
}

// stopIdle stops a daemon that has no pool: one held no longer waits, one
// scaled to 0 closes its listeners and leaves the registry (a start brings
// it back at the sizes it had before the scale to 0), one waiting for its
// port stops trying.
func (s *Supervisor) stopIdle(d *daemon) {
	d.held, d.waiting = false, "" // stopped by hand: it no longer waits
	d.cancelPortWait()
	d.unzero()
	if d.listeners != nil {
		s.closeAll(d.listeners)
		d.listeners = nil
		s.reg.remove(d.cfg.Name)
		s.log.Named(d.cfg.Name).Info("daemon stopped")
	}
}
