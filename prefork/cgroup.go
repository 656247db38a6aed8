package prefork

// Limits are a daemon's resource limits, applied to its control group (all
// its workers and what they start, together). Zero means no limit.
type Limits struct {
	MemoryMax  int64   // bytes: the kernel's OOM killer acts at the limit
	MemoryHigh int64   // bytes: throttled and reclaimed above it (cgroup v1: the soft limit)
	PidsMax    int64   // processes and threads
	CPUWeight  int     // 1–10000, 100 the default share
	CPUMax     float64 // CPUs' worth of time: 0.5 is 50% of one, 2 is two
}

// GroupStats is what a control group accounts for: one worker's, or a
// daemon's (all its workers).
type GroupStats struct {
	CPUSeconds  float64 `json:"cpu_seconds"`
	MemoryBytes int64   `json:"memory_bytes"`
	MemoryPeak  int64   `json:"memory_peak_bytes"`
	Procs       int     `json:"procs"`
	OOMKills    int     `json:"oom_kills"`
}

// CgroupOptions say where a master makes its control groups.
type CgroupOptions struct {
	// Root is a directory in the cgroup2 hierarchy the master may write
	// ([nsfd] cgroup_root); empty: detected — the unit's own group when run
	// by systemd with Delegate=yes, else the hierarchy's nsfd/ directory.
	Root string
	// Off: no control groups (NSFD_CGROUPS=off); containment falls back to
	// the subreaper and process groups.
	Off bool
}
