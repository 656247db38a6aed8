package prefork

import (
	"time"
)

// The hand-over of an upgrade (nsfd upgrade): the types every platform
// knows; Linux does the work (adopt_linux.go, pool_handover_linux.go).

// Handover is what a process backend must do for an upgrade; Pump does it.
type Handover interface {
	// Export takes every running worker's pipes out of the backend
	// without closing them or their writers and returns them by pid, with
	// a func that gives them back (the exec failed). Until that func is
	// called, nothing of those workers is read or reported.
	Export() (map[int]WorkerPipes, func())
	// Adopt watches a worker started by an earlier master in this
	// process, its pipes inherited: as Start, without starting it.
	Adopt(c Command, pid int, pipes WorkerPipes) (*Process, error)
}

// WorkerPipes are the read ends of a worker's stdout and stderr; -1: closed.
// Partial is what of an incomplete last line was read from each already
// (an Output writer with a Pending method tells).
type WorkerPipes struct {
	Stdout  int       `json:"stdout"`
	Stderr  int       `json:"stderr"`
	Partial [2][]byte `json:"partial,omitempty"`
}

// pendingWriter is an Output writer that holds an incomplete line
// (logging.LineWriter).
type pendingWriter interface{ Pending() []byte }

// PoolHandover is a pool as it passes from a master to the one that
// replaces it in the same process (an upgrade): its workers, which keep
// running, its notify socket, which stays bound, and its counters. It is
// part of the master's versioned hand-over format: change it only with
// that format's version.
type PoolHandover struct {
	NotifyFD     int              `json:"notify_fd"` // -1: none
	Workers      []WorkerHandover `json:"workers"`
	Spawns       int              `json:"spawns"`
	Restarts     int              `json:"restarts"`
	Requests     int              `json:"requests"`
	Malformed    int              `json:"malformed"`
	FailedStarts int              `json:"failed_starts"`
	Fatal        bool             `json:"fatal"`
	Since        time.Time        `json:"since"`
}

// WorkerHandover is one worker in a PoolHandover.
type WorkerHandover struct {
	PID         int         `json:"pid"`
	Slot        int         `json:"slot"`
	State       WorkerState `json:"state"`
	Started     time.Time   `json:"started"`
	IdleSince   time.Time   `json:"idle_since"`
	Ready       bool        `json:"ready"`
	Requests    int         `json:"requests"`
	OwnCount    bool        `json:"own_count"`
	MaxRequests int         `json:"max_requests"`
	Replaced    bool        `json:"replaced"`
	Cause       ExitCause   `json:"cause"`
	StopSignal  bool        `json:"stop_signal"`
	Killed      bool        `json:"killed"`
	Status      string      `json:"status,omitempty"`
	Pipes       WorkerPipes `json:"pipes"` // filled from Handover.Export
}
