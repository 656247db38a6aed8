package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseFloor(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "floor.out")
	line := "noise\nspawned=3 loop_ns=1500000 self_cpu_ns=200000 children_cpu_ns=9000000 respawned=2\n"
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parseFloor(path)
	want := floorOutput{spawned: 3, loop: 1500 * time.Microsecond, selfCPU: 200 * time.Microsecond, children: 9 * time.Millisecond, respawn: 2}
	if err != nil || got != want {
		t.Errorf("parseFloor = %+v, %v; want %+v", got, err, want)
	}
	if err := os.WriteFile(path, []byte("spawnfloor: posix_spawn: EAGAIN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseFloor(path); err == nil {
		t.Error("parseFloor of a line-less output: no error")
	}
}

func TestMedianRun(t *testing.T) {
	t.Parallel()
	runs := []startRun{
		{up: 3 * time.Second, masterCPU: 30 * time.Millisecond, childCPU: 70 * time.Millisecond}, // 10 ms a process
		{up: 1 * time.Second, masterCPU: 10 * time.Millisecond, childCPU: 10 * time.Millisecond}, // 2 ms
		{up: 2 * time.Second, masterCPU: 20 * time.Millisecond, childCPU: 30 * time.Millisecond}, // 5 ms
	}
	if r := medianRun(runs, 10); r.up != 2*time.Second {
		t.Errorf("medianRun picked %+v", r)
	}
	if up, cpu := medianRuns(runs, 10); up != 2*time.Second || cpu != 5*time.Millisecond {
		t.Errorf("medianRuns = %v, %v", up, cpu)
	}
	if got := overBy(3*time.Millisecond, 2*time.Millisecond); got != "1.0 ms (50%) over" {
		t.Errorf("overBy = %q", got)
	}
}
