package supervisor

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsfd/nsfd/worker"
)

// The master under systemd (Type=notify) speaks sd_notify to it with the
// same client its workers use towards the master: READY=1 after the first
// reconcile, RELOADING=1 and READY=1 around each reload, STOPPING=1 on the
// way out, a STATUS= summary, and the watchdog when WatchdogSec is set.

func (s *Supervisor) sdNotify(states ...string) {
	if os.Getenv(worker.EnvNotifySocket) == "" {
		return
	}
	if err := worker.Notify(states...); err != nil {
		s.log.Debug("sd_notify", "error", err)
	}
}

// sdReloading tells systemd a reload starts (with the CLOCK_MONOTONIC stamp
// Type=notify-reload wants).
func (s *Supervisor) sdReloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	s.sdNotify(worker.NotifyReloading, worker.NotifyMonotonicUSec+strconv.FormatInt(ts.Nano()/1000, 10))
}

// sdReady reports readiness with a one-line summary.
func (s *Supervisor) sdReady() {
	s.sdNotify(worker.NotifyReady, worker.NotifyStatus+s.summary())
}

// summary is a one-line STATUS= text, from Run's goroutine.
func (s *Supervisor) summary() string {
	running, stopped := 0, 0
	for _, d := range s.daemons {
		if d.pool != nil {
			running++
		} else {
			stopped++
		}
	}
	txt := fmt.Sprintf("%d daemon(s) started", running)
	if stopped > 0 {
		txt += fmt.Sprintf(", %d stopped", stopped)
	}
	if n := len(s.errs) + configErrors(s.daemons); n > 0 || s.masterErr != nil {
		txt += fmt.Sprintf(", %d config error(s)", n)
		if s.masterErr != nil {
			txt += " (nsfd.ini)"
		}
	}
	return txt
}

func configErrors(ds map[string]*daemon) int {
	n := 0
	for _, d := range ds {
		if d.configErr != nil {
			n++
		}
	}
	return n
}

// sdWatchdog pings systemd's watchdog at half its interval until ctx ends.
func (s *Supervisor) sdWatchdog(ctx context.Context) {
	iv, err := worker.WatchdogInterval()
	if err != nil || iv <= 0 || os.Getenv(worker.EnvNotifySocket) == "" {
		return
	}
	go func() {
		t := time.NewTicker(iv / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Through the loop: a wedged master stops pinging.
				pctx, cancel := context.WithTimeout(ctx, iv/2)
				if s.do(pctx, func(context.Context) {}) == nil {
					s.sdNotify(worker.NotifyWatchdog)
				}
				cancel()
			}
		}
	}()
}
