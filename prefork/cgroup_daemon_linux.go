package prefork

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DaemonCgroup is one daemon's control group: its limits, and one group
// per worker below it for the worker's own accounting, its
// OOM kills, and killing what it started.
type DaemonCgroup struct {
	c        *Cgroups
	name     string
	limits   Limits
	cpuSet   atomic.Bool    // it has had cpu limits: its workers are in its v1 cpu group
	removals sync.WaitGroup // its workers' groups being removed
}

// Daemon makes (or finds) the group of the daemon name and applies its
// limits. It returns nil without control groups; with them and a limit
// this host cannot apply, the group and an error naming the limit.
func (c *Cgroups) Daemon(name string, l Limits) (*DaemonCgroup, error) {
	if c == nil || c.degraded != "" {
		if l != (Limits{}) {
			return nil, fmt.Errorf("daemon %s: resource limits need control groups: %s", name, c.Degraded())
		}
		return nil, nil
	}
	d := &DaemonCgroup{c: c, name: name, limits: l}
	for _, dir := range d.dirs() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("make control group of %s: %w", name, err)
		}
	}
	if c.v2ctl {
		enableControllers(filepath.Join(c.v2, name), "memory", "pids")
	}
	return d, d.SetLimits(l)
}

// dirs returns the daemon's group in each hierarchy, cgroup2's first.
func (d *DaemonCgroup) dirs() []string {
	var out []string
	for _, r := range d.c.roots() {
		out = append(out, filepath.Join(r, d.name))
	}
	return out
}

// ctlDir returns the daemon's group in the hierarchy of a controller, "" if
// there is none.
func (d *DaemonCgroup) ctlDir(ctl string) string {
	if d.c.v2ctl {
		return filepath.Join(d.c.v2, d.name)
	}
	if r, ok := d.c.v1[ctl]; ok {
		return filepath.Join(r, d.name)
	}
	return ""
}

// cpuPeriod is the period of cpu_max, in µs.
const cpuPeriod = 100000

// SetLimits applies l to the daemon's group (zero fields lift a limit).
func (d *DaemonCgroup) SetLimits(l Limits) error {
	d.limits = l
	var errs []error
	set := func(ctl, file, val, key string) {
		dir := d.ctlDir(ctl)
		if dir == "" {
			errs = append(errs, fmt.Errorf("%s: no %s controller on this host", key, ctl))
			return
		}
		if err := writeControl(filepath.Join(dir, file), val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	limit := func(v int64, none string) string {
		if v <= 0 {
			return none
		}
		return strconv.FormatInt(v, 10)
	}
	want := func(v int64) bool { return v > 0 }
	if d.c.v2ctl {
		if want(l.MemoryMax) || d.has("memory.max") {
			set("memory", "memory.max", limit(l.MemoryMax, "max"), "memory_max")
			if want(l.MemoryMax) {
				_ = writeControl(filepath.Join(d.ctlDir("memory"), "memory.swap.max"), "0")
			}
		}
		if want(l.MemoryHigh) || d.has("memory.high") {
			set("memory", "memory.high", limit(l.MemoryHigh, "max"), "memory_high")
		}
		if want(l.PidsMax) || d.has("pids.max") {
			set("pids", "pids.max", limit(l.PidsMax, "max"), "pids_max")
		}
		if l.CPUWeight > 0 || l.CPUMax > 0 {
			d.c.cpuOnce.Do(func() { // the cpu controller, from now on (see Cgroups.isCPURoot)
				for _, dir := range d.c.enable {
					enableControllers(dir, "cpu")
				}
			})
		}
		if l.CPUWeight > 0 || d.has("cpu.weight") {
			set("cpu", "cpu.weight", limit(int64(l.CPUWeight), "100"), "cpu_weight")
		}
		if l.CPUMax > 0 || d.has("cpu.max") {
			set("cpu", "cpu.max", limit(int64(l.CPUMax*cpuPeriod), "max")+" "+strconv.Itoa(cpuPeriod), "cpu_max")
		}
		return errors.Join(errs...)
	}
	if want(l.MemoryMax) || d.ctlDir("memory") != "" {
		set("memory", "memory.limit_in_bytes", limit(l.MemoryMax, "-1"), "memory_max")
		if want(l.MemoryMax) {
			_ = writeControl(filepath.Join(d.ctlDir("memory"), "memory.swappiness"), "0")
		}
	}
	if want(l.MemoryHigh) || d.ctlDir("memory") != "" {
		set("memory", "memory.soft_limit_in_bytes", limit(l.MemoryHigh, "-1"), "memory_high")
	}
	if want(l.PidsMax) || d.ctlDir("pids") != "" {
		set("pids", "pids.max", limit(l.PidsMax, "max"), "pids_max")
	}
	if l.CPUWeight > 0 || l.CPUMax > 0 {
		d.cpuSet.Store(true) // its workers join its cpu group from now on (newWorker)
	}
	cpu := d.cpuSet.Load() && d.ctlDir("cpu") != ""
	if cpu || l.CPUWeight > 0 {
		shares := int64(1024)
		if l.CPUWeight > 0 {
			shares = max(2, int64(l.CPUWeight)*1024/100)
		}
		set("cpu", "cpu.shares", strconv.FormatInt(shares, 10), "cpu_weight")
	}
	if cpu || l.CPUMax > 0 {
		set("cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriod), "cpu_max")
		set("cpu", "cpu.cfs_quota_us", limit(int64(l.CPUMax*cpuPeriod), "-1"), "cpu_max")
	}
	return errors.Join(errs...)
}

// has says whether the daemon's cgroup2 group has a control file (its
// controller is enabled).
func (d *DaemonCgroup) has(file string) bool {
	_, err := os.Stat(filepath.Join(d.c.v2, d.name, file))
	return err == nil
}

// Limits returns the limits last applied.
func (d *DaemonCgroup) Limits() Limits { return d.limits }

// Stats returns what the daemon's group accounts for: all its workers and
// what they started.
func (d *DaemonCgroup) Stats() GroupStats {
	if d == nil {
		return GroupStats{}
	}
	return d.c.stats(d.name)
}

// Close removes the daemon's group once the pool has stopped and its
// workers' groups are gone. Its workers were killed with their groups as
// they exited; the group stays if another pool of the same daemon (a
// restart) already has workers in it. The cgroup2 group goes first: every
// worker has a group of its own below it, made before it starts, so while
// another pool uses the daemon it stays, and so do the v1 pids and cpu
// groups its workers join without a group of their own there.
func (d *DaemonCgroup) Close() {
	if d == nil {
		return
	}
	d.removals.Wait()
	for _, dir := range d.dirs() {
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			return
		}
	}
}

// workerCgroup is one worker's group, below its daemon's.
type workerCgroup struct {
	d    *DaemonCgroup
	rel  string   // daemon/wN
	dirs []string // the group in each hierarchy it has one in, cgroup2's first
	// joins are the daemon's groups the worker is in without one of its
	// own: v1 pids and cpu on a hybrid host (see newWorker).
	joins []string
	// late: the worker joins it once running (a preloaded worker, moved
	// after its fork), so what it starts first may be elsewhere.
	late bool
}

// newWorker makes the group of the next worker.
//
// On a hybrid host the worker has a group of its own in cgroup2
// (membership, cgroup.kill, cpu.stat) and in v1 memory (its memory and OOM
// kills: v1 counts a kill only in the victim's own group). In v1 pids and
// cpu it is put in its daemon's group, where the limits are: a group of
// its own there would add nothing cgroup2's does not give, and costs a
// mkdir and an rmdir per worker (and in cpu, a level of group scheduling
// on every wakeup).
func (d *DaemonCgroup) newWorker() (*workerCgroup, error) {
	w := &workerCgroup{d: d, rel: filepath.Join(d.name, "w"+d.c.epoch+"-"+strconv.FormatInt(d.c.seq.Add(1), 10))}
	for _, r := range d.c.roots() {
		switch {
		case d.c.isCPURoot(r) && !d.cpuSet.Load():
			// no cpu group without a cpu limit (see Cgroups.isCPURoot)
		case r == d.c.v2 || r == d.c.v1["memory"]:
			w.dirs = append(w.dirs, filepath.Join(r, w.rel))
		default:
			w.joins = append(w.joins, filepath.Join(r, d.name))
		}
	}
	for _, dir := range w.dirs {
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("make worker control group: %w", err)
		}
	}
	return w, nil
}

// procPath is the worker's group as /proc/PID/cgroup shows it for what is
// in it; "" if unknown.
func (w *workerCgroup) procPath() string {
	if w.d.c.v2rel == "" {
		return ""
	}
	return filepath.Join(w.d.c.v2rel, w.rel)
}

// v2Dir is the worker's group in the cgroup2 hierarchy; "" if none.
func (w *workerCgroup) v2Dir() string {
	if w.d.c.v2 == "" {
		return ""
	}
	return filepath.Join(w.d.c.v2, w.rel)
}

// procsFiles are the files the worker writes its pid to, to join its
// groups.
func (w *workerCgroup) procsFiles() []string {
	var out []string
	for _, d := range slices.Concat(w.dirs, w.joins) {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// kill sends SIGKILL to every process in the worker's group: with the
// cgroup2 group's cgroup.kill alone where the kernel has it (a worker born
// in its groups has every process it starts in that group and in its v1
// groups alike), else in each hierarchy. It says whether that covered the
// worker's whole tree: cgroup.kill, on a worker born in its group.
func (w *workerCgroup) kill() bool {
	for i, d := range w.dirs {
		if killGroupDir(d) && i == 0 && w.d.c.v2 != "" {
			return !w.late
		}
	}
	return false
}

// stats is what the worker's group accounts for.
func (w *workerCgroup) stats() GroupStats { return w.d.c.stats(w.rel) }

// oomKills is the number of the worker's processes the kernel's OOM killer
// killed: all a worker's exit needs of stats.
func (w *workerCgroup) oomKills() int {
	c := w.d.c
	if c.v2ctl {
		n, _ := keyedValue(filepath.Join(c.v2, w.rel, "memory.events"), "oom_kill")
		return int(n)
	}
	if _, ok := c.v1["memory"]; ok {
		return c.v1OOMKills(w.rel)
	}
	return 0
}

// remove removes the worker's group once what was in it has exited, in the
// background; Cgroups.Close waits for it.
func (w *workerCgroup) remove() {
	w.d.c.removals.Add(1)
	w.d.removals.Add(1)
	go func() {
		defer w.d.c.removals.Done()
		defer w.d.removals.Done()
		deadline := time.Now().Add(5 * time.Second)
		for _, d := range w.dirs {
			_ = removeTree(d, deadline)
		}
	}()
}

// stats reads the accounting of the group rel (below the master's root).
func (c *Cgroups) stats(rel string) GroupStats {
	var st GroupStats
	dir := func(ctl string) string {
		if c.v2ctl || ctl == "" {
			return filepath.Join(c.v2, rel)
		}
		if r, ok := c.v1[ctl]; ok {
			return filepath.Join(r, rel)
		}
		return ""
	}
	if c.v2 != "" {
		st.Procs = len(groupProcs(dir(""), true))
		if us, ok := keyedValue(filepath.Join(dir(""), "cpu.stat"), "usage_usec"); ok {
			st.CPUSeconds = float64(us) / 1e6
		}
	} else if d := dir("pids"); d != "" {
		st.Procs = len(groupProcs(d, true))
	}
	if c.v2ctl {
		st.MemoryBytes = intFile(filepath.Join(dir("memory"), "memory.current"))
		st.MemoryPeak = intFile(filepath.Join(dir("memory"), "memory.peak"))
		if n, ok := keyedValue(filepath.Join(dir("memory"), "memory.events"), "oom_kill"); ok {
			st.OOMKills = int(n)
		}
		return st
	}
	if d := dir("memory"); d != "" {
		st.MemoryBytes = intFile(filepath.Join(d, "memory.usage_in_bytes"))
		st.MemoryPeak = intFile(filepath.Join(d, "memory.max_usage_in_bytes"))
		st.OOMKills = c.v1OOMKills(rel)
	}
	if st.CPUSeconds == 0 {
		if d := dir("cpuacct"); d != "" {
			st.CPUSeconds = float64(intFile(filepath.Join(d, "cpuacct.usage"))) / 1e9
		}
	}
	return st
}

// v1OOMKills adds up the OOM kills of the v1 memory group rel and those
// below it: v1 counts a kill only in the victim's own group.
func (c *Cgroups) v1OOMKills(rel string) int {
	root := filepath.Join(c.v1["memory"], rel)
	var st syscall.Stat_t
	if syscall.Lstat(root, &st) == nil && st.Nlink == 2 { // a cgroupfs directory has 2 links and one per group below it
		k, _ := keyedValue(filepath.Join(root, "memory.oom_control"), "oom_kill")
		return int(k)
	}
	n := 0
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if k, ok := keyedValue(filepath.Join(p, "memory.oom_control"), "oom_kill"); ok {
				n += int(k)
			}
		}
		return nil
	})
	return n
}

// intFile reads a control file holding one number; 0 if it cannot.
func intFile(path string) int64 {
	b, err := readControl(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// keyedValue reads the value of key in a "key value" control file.
func keyedValue(path, key string) (int64, bool) {
	b, err := readControl(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
