package prefork

import (
	"bufio"
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

// Cgroups are a master's control groups: its own (master/) and one per
// daemon, with one per worker below it, under a root of its own.
//
// Two layouts are supported. On a pure cgroup2 host the root is in the
// unified hierarchy, which has the memory, pids and cpu controllers: limits
// and accounting go there. On a hybrid host (cgroup2 mounted without
// controllers, cgroup v1 memory, pids, cpu and cpuacct hierarchies beside
// it) the cgroup2 group gives membership, cgroup.kill and cgroup.events, and
// the same tree is made in each v1 hierarchy for the limits. A worker is
// in its group in every hierarchy before it execs the command, so nothing
// it starts can be outside: the direct spawn clones it into its cgroup2
// group (CLONE_INTO_CGROUP: no migration) and it writes its pid to the v1
// groups' cgroup.procs; the exec shim writes every one (its -cgroup flags).
//
// The file operations are written here rather than taken from
// containerd/cgroups: it drives v1 or v2 but not the hybrid mix this needs
// (v2 membership and kill with v1 limits), and it would bring systemd's
// D-Bus, eBPF and protobuf modules into a binary that uses a dozen files.
type Cgroups struct {
	degraded string            // why there are no control groups; "" if there are
	v2       string            // the master's root in the cgroup2 hierarchy; "" if none
	v2rel    string            // v2 as /proc/PID/cgroup shows it (below the hierarchy's mount); "" if unknown
	v2ctl    bool              // cgroup2 has the controllers: limits go there
	v1       map[string]string // v1 controller → the master's root in its hierarchy
	orig     []string          // the master's groups before it moved, to go back to at Close
	owned    []string          // directories the master made above its root, removed at Close if empty
	removals sync.WaitGroup    // worker groups being removed
	seq      atomic.Int64      // names worker groups: wEPOCH-1, wEPOCH-2, …
	epoch    string            // when this master opened them: a master exec'd in place (an upgrade) names its workers' groups apart from its predecessor's
	once     sync.Once
	enable   []string  // cgroup2 groups whose subtree_control a cpu limit turns the cpu controller on in
	cpuOnce  sync.Once // the cpu controller turned on in them
	lock     *os.File  // the cgroup2 root, flocked for the master's life (lockRoot); nil under systemd
}

// The cpu controller is used only for a daemon that sets cpu_weight or
// cpu_max (as systemd turns it on only for a unit that asks): a process in
// a cpu group of its own, at any depth, costs every wakeup the group
// scheduler's work, and measured 40% more CPU per request for a Perl echo
// pool at 64 connections on a hybrid host than outside one. CPU time is
// accounted without it (cgroup2's cpu.stat has usage_usec in every group).

// isCPURoot says whether dir is the master's root in the v1 cpu or cpuacct
// hierarchy.
func (c *Cgroups) isCPURoot(dir string) bool {
	return dir != "" && (dir == c.v1["cpu"] || dir == c.v1["cpuacct"])
}

// v1Controllers are the v1 hierarchies used on a hybrid host.
var v1Controllers = []string{"memory", "pids", "cpu", "cpuacct"}

// cgroupFS is where the kernel's files are; tests point it elsewhere.
var cgroupFS = struct{ mountinfo, self string }{"/proc/self/mountinfo", "/proc/self/cgroup"}

// OpenCgroups makes the master's root group and moves the master into its
// master/ group. It does not fail: without control groups (o.Off, not
// root, a read-only /sys, no cgroup2) it returns Cgroups whose Degraded
// says why, and every worker runs with the subreaper and its process group
// only.
func OpenCgroups(o CgroupOptions) *Cgroups {
	c := &Cgroups{v1: map[string]string{}, epoch: strconv.FormatInt(time.Now().UnixMilli(), 36)}
	if o.Off {
		c.degraded = "control groups turned off (NSFD_CGROUPS=off)"
		return c
	}
	if err := c.open(o.Root); err != nil {
		c.degraded = err.Error()
		defer c.unlock()
		for _, d := range append(slices.Collect(mapValues(c.v1)), c.v2) {
			if d != "" && c.lock != nil { // not a root another holds
				_ = removeTree(d, time.Now().Add(time.Second))
			}
		}
		c.v2, c.v1 = "", map[string]string{}
	}
	return c
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func (c *Cgroups) open(root string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	v2mount := mounts[""]
	if v2mount == "" {
		return errors.New("no cgroup2 hierarchy mounted")
	}
	ctl, _ := readControl(filepath.Join(v2mount, "cgroup.controllers"))
	have := strings.Fields(string(ctl))
	c.v2ctl = slices.Contains(have, "memory") && slices.Contains(have, "pids")
	pid := strconv.Itoa(os.Getpid()) // what cgroup.procs takes, in this pid namespace
	self := rootName()
	systemd := os.Getenv("INVOCATION_ID") != "" && strings.HasSuffix(own[""], ".service")
	switch {
	case root != "":
		c.v2 = filepath.Join(root, self)
	case systemd: // the unit's group, delegated to it (Delegate=yes)
		c.v2 = filepath.Join(v2mount, own[""])
	default:
		c.v2 = filepath.Join(v2mount, "nsfd", self)
	}
	if rel, err := filepath.Rel(v2mount, c.v2); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		c.v2rel = filepath.Join("/", rel)
	}
	if !systemd {
		if root == "" {
			c.owned = append(c.owned, filepath.Dir(c.v2))
		}
		lock, err := lockRoot(c.v2, time.Now().Add(5*time.Second))
		if err != nil {
			return err
		}
		c.lock = lock
		sweepStale(filepath.Dir(c.v2), filepath.Dir(c.v2), self)
	}
	if !c.v2ctl {
		for _, name := range v1Controllers {
			m, ok := mounts[name]
			if !ok {
				continue
			}
			dir := filepath.Join(m, own[name])
			if !systemd {
				dir = filepath.Join(dir, "nsfd", self)
			}
			if slices.Contains(slices.Collect(mapValues(c.v1)), dir) {
				continue // comounted with one already there
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				continue // that controller's limits are not available
			}
			if !systemd {
				c.owned = append(c.owned, filepath.Dir(dir))
				sweepStale(filepath.Dir(dir), filepath.Dir(c.v2), self)
			}
			c.v1[name] = dir
		}
	}
	// The master into master/: under systemd the unit's group must have no
	// process of its own before it delegates controllers to its children.
	// Not in a v1 cpu hierarchy (see Cgroups.isCPURoot): what it starts stays in the
	// cpu group it was started in.
	for _, dir := range c.roots() {
		if c.isCPURoot(dir) {
			continue
		}
		m := filepath.Join(dir, "master")
		if err := os.MkdirAll(m, 0o755); err != nil {
			return fmt.Errorf("make control group: %w", err)
		}
		if err := writeControl(filepath.Join(m, "cgroup.procs"), pid); err != nil {
			return fmt.Errorf("join control group: %w", err)
		}
	}
	c.orig = append(c.orig, filepath.Join(v2mount, own[""]))
	for name, dir := range c.v1 {
		c.orig = append(c.orig, filepath.Join(mounts[name], own[name]))
		_ = dir
	}
	if c.v2ctl {
		c.enable = []string{c.v2}
		if !systemd && root == "" {
			c.enable = []string{v2mount, filepath.Dir(c.v2), c.v2}
		}
		for _, dir := range c.enable {
			enableControllers(dir, "memory", "pids")
		}
	}
	return nil
}

// roots returns the master's root in each hierarchy, cgroup2's first.
func (c *Cgroups) roots() []string {
	var out []string
	if c.v2 != "" {
		out = append(out, c.v2)
	}
	for _, name := range v1Controllers {
		if d, ok := c.v1[name]; ok && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// Degraded says why the master has no control groups; "" if it has.
func (c *Cgroups) Degraded() string {
	if c == nil {
		return "no control groups"
	}
	return c.degraded
}

// String describes the layout, for `nsfd status` and the log.
func (c *Cgroups) String() string {
	switch {
	case c == nil || c.degraded != "":
		return "degraded (subreaper and process groups only): " + c.Degraded()
	case c.v2ctl:
		return "cgroup2 " + c.v2
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.v1 {
			if !yield(n) {
				return
			}
		}
	})
	return "hybrid: cgroup2 " + c.v2 + ", cgroup v1 " + strings.Join(names, ",")
}

// Close kills what is left in the master's groups, moves the master back
// where it was and removes its groups. It is idempotent.
func (c *Cgroups) Close() {
	if c == nil || c.degraded != "" {
		return
	}
	c.once.Do(func() {
		c.removals.Wait()
		for _, dir := range c.roots() {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.IsDir() && e.Name() != "master" {
					killGroupDir(filepath.Join(dir, e.Name()))
				}
			}
		}
		pid := strconv.Itoa(os.Getpid())
		for _, o := range c.orig {
			_ = writeControl(filepath.Join(o, "cgroup.procs"), pid)
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, dir := range c.roots() {
			if slices.Contains(c.orig, dir) { // systemd's unit group: only what is below it
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if e.IsDir() {
						_ = removeTree(filepath.Join(dir, e.Name()), deadline)
					}
				}
				continue
			}
			_ = removeTree(dir, deadline)
		}
		for _, d := range c.owned {
			_ = syscall.Rmdir(d) // nsfd/: only if no other master uses it
		}
		c.unlock()
	})
}

// cgroupMounts returns the mount point of the cgroup2 hierarchy (key "")
// and of each v1 controller's, from mountinfo.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open(cgroupFS.mountinfo)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue // a bind of part of a hierarchy: paths would not match
		}
		switch qf[0] {
		case "cgroup2":
			if _, ok := out[""]; !ok {
				out[""] = pf[4]
			}
		case "cgroup":
			for _, o := range strings.Split(qf[2], ",") {
				if slices.Contains(v1Controllers, o) {
					out[o] = pf[4]
				}
			}
		}
	}
	return out, sc.Err()
}

// ownCgroups returns the process's group in the cgroup2 hierarchy (key "")
// and in each v1 controller's.
func ownCgroups() (map[string]string, error) {
	b, err := readControl(cgroupFS.self)
	if err != nil {
		return nil, fmt.Errorf("read own control groups: %w", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			out[ctl] = parts[2]
		}
	}
	return out, nil
}

// enableControllers delegates ctls to dir's children, each
// on its own so that a missing one does not stop the others.
func enableControllers(dir string, ctls ...string) {
	for _, ctl := range ctls {
		_ = writeControl(filepath.Join(dir, "cgroup.subtree_control"), "+"+ctl)
	}
}

// killTreeDirs kills every process in dir and the groups below it.
func killTreeDirs(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			killGroupDir(p)
		}
		return nil
	})
}

// killGroupDir sends SIGKILL to every process in the group dir and below:
// with cgroup.kill where the kernel has it (it says so: true), else to each
// process listed, until none is left (a process forking meanwhile is listed
// on a next read).
func killGroupDir(dir string) bool {
	if writeControl(filepath.Join(dir, "cgroup.kill"), "1") == nil {
		return true
	}
	for range 100 {
		pids := groupProcs(dir, true)
		if len(pids) == 0 {
			return false
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return false
}

// groupProcs returns the pids in the group dir, and with deep in the
// groups below it too.
func groupProcs(dir string, deep bool) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if !deep && p != dir {
			return filepath.SkipDir
		}
		b, _ := readControl(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeTree removes the group dir and those below it, deepest first,
// retrying until deadline while killed processes are still exiting.
func removeTree(dir string, deadline time.Time) error {
	for {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		var err error
		for i := len(dirs) - 1; i >= 0; i-- {
			if e := syscall.Rmdir(dirs[i]); e != nil && !errors.Is(e, syscall.ENOENT) {
				err = e
			}
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		// The kernel gives no event for a v1 group becoming empty: poll,
		// briefly, while the killed processes exit.
		time.Sleep(10 * time.Millisecond)
	}
}
