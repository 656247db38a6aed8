package prefork

import "fmt"

// PoolState is the state of a daemon's pool. Its String is what `nsfd
// status` shows and what the registry stores.
type PoolState int

// Pool states.
const (
	PoolStarting PoolState = iota // no worker ready yet
	PoolRunning                   // at least one worker ready
	PoolBackoff                   // no worker ready; waiting to retry a failed start
	PoolFatal                     // gave up after start_retries failed starts
	PoolStopping                  // draining
	PoolStopped                   // stopped: no worker left
	PoolIdle                      // on demand (min_servers = 0): no worker until a connection arrives
)

var poolStateNames = [...]string{"starting", "running", "backoff", "fatal", "stopping", "stopped", "idle (on demand)"}

// String returns "starting", "running", "backoff", "fatal", "stopping",
// "stopped" or "idle (on demand)".
func (s PoolState) String() string {
	if s >= 0 && int(s) < len(poolStateNames) {
		return poolStateNames[s]
	}
	return fmt.Sprintf("PoolState(%d)", int(s))
}

// MarshalText writes the state as its String, so a Status in JSON reads
// "running", not a number.
func (s PoolState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (s *PoolState) UnmarshalText(b []byte) error {
	for i, n := range poolStateNames {
		if n == string(b) {
			*s = PoolState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown pool state %q", b)
}

// ExitCause says why a worker exited (Event.Cause). Its String is the
// cause label of nsfd_worker_exits_total and the start of what the
// registry records as the worker's last exit.
type ExitCause int

// Exit causes. CauseNone is the zero value: a worker nobody told to stop.
const (
	CauseNone         ExitCause = iota
	CauseStopped                // the pool stopped, or killed it when its patience ran out
	CauseRetired                // surplus idle worker, stopped by the spare-server policy
	CauseReplaced               // reached max_requests, or rolled onto a new configuration
	CauseExited                 // left on its own: STOPPING=1, or exit status 0 unasked
	CauseCrashed                // exited unasked with a non-zero status or a signal
	CauseFailedStart            // exited before start_period, or before it was ready
	CauseWatchdog               // missed its WATCHDOG=1, or asked for the watchdog action
	CauseReadyTimeout           // type = notify: not ready within ready_timeout
	CauseOOM                    // killed by the kernel's OOM killer at its daemon's memory_max
)

var exitCauseNames = [...]string{"", "stopped", "retired", "replaced", "exited", "crashed", "failed-start", "watchdog", "ready-timeout", "oom"}

// String returns the cause's name ("crashed", "failed-start", …); "" for
// CauseNone.
func (c ExitCause) String() string {
	if c >= 0 && int(c) < len(exitCauseNames) {
		return exitCauseNames[c]
	}
	return fmt.Sprintf("ExitCause(%d)", int(c))
}

// Unplanned reports whether an exit of this cause is one no configuration
// or command asked for — the worker crashed, left, failed to start or hung
// — and its replacement counts as a restart (nsfd_worker_restarts_total).
func (c ExitCause) Unplanned() bool {
	switch c {
	case CauseCrashed, CauseExited, CauseFailedStart, CauseWatchdog, CauseReadyTimeout, CauseOOM:
		return true
	}
	return false
}

// ExitCauses lists every cause a worker's exit can have, CauseNone aside,
// in the order of their values.
func ExitCauses() []ExitCause {
	out := make([]ExitCause, 0, len(exitCauseNames)-1)
	for c := CauseNone + 1; int(c) < len(exitCauseNames); c++ {
		out = append(out, c)
	}
	return out
}
