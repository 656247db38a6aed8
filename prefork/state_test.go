package prefork

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// The names of causes and states leave the process (metric labels, the
// registry, `nsfd status --json`): they must not change by accident.
func TestExitCauseNames(t *testing.T) {
	want := map[ExitCause]string{
		CauseStopped: "stopped", CauseRetired: "retired", CauseReplaced: "replaced", CauseExited: "exited",
		CauseCrashed: "crashed", CauseFailedStart: "failed-start", CauseWatchdog: "watchdog", CauseReadyTimeout: "ready-timeout", CauseOOM: "oom",
	}
	all := ExitCauses()
	if len(all) != len(want) || slices.Contains(all, CauseNone) {
		t.Fatalf("ExitCauses() = %v; want the %d causes, CauseNone aside", all, len(want))
	}
	for _, c := range all {
		if c.String() != want[c] {
			t.Errorf("cause %d is %q, want %q", int(c), c.String(), want[c])
		}
	}
	var unplanned []string
	for _, c := range all {
		if c.Unplanned() {
			unplanned = append(unplanned, c.String())
		}
	}
	if got := strings.Join(unplanned, " "); got != "exited crashed failed-start watchdog ready-timeout oom" {
		t.Errorf("unplanned causes: %s", got)
	}
	if CauseNone.String() != "" || !strings.Contains(ExitCause(99).String(), "99") {
		t.Errorf("CauseNone %q, ExitCause(99) %q", CauseNone.String(), ExitCause(99).String())
	}
}

func TestPoolStateNamesAndJSON(t *testing.T) {
	want := []string{"starting", "running", "backoff", "fatal", "stopping", "stopped", "idle (on demand)"}
	for i, s := range []PoolState{PoolStarting, PoolRunning, PoolBackoff, PoolFatal, PoolStopping, PoolStopped, PoolIdle} {
		if s.String() != want[i] {
			t.Errorf("state %d is %q, want %q", i, s.String(), want[i])
		}
	}
	b, err := json.Marshal(Status{Name: "a", State: PoolFatal})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"state":"fatal"`) {
		t.Errorf("a status in JSON: %s; want the state by name", b)
	}
	var back Status
	if err := json.Unmarshal(b, &back); err != nil || back.State != PoolFatal {
		t.Errorf("round trip: %v, %v", back.State, err)
	}
	if err := json.Unmarshal([]byte(`{"state":"sleepy"}`), &back); err == nil {
		t.Error("an unknown state was read")
	}
}
