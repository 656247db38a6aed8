package prefork

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCgroupLayoutParsing: the mount points and own groups of a hybrid and
// a pure cgroup2 host, from their /proc files; a bind of part of a
// hierarchy is not taken for its mount.
func TestCgroupLayoutParsing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mounts, owns map[string]string
	}{
		{"hybrid",
			map[string]string{"": "/sys/fs/cgroup/unified", "cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
				"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"},
			map[string]string{"": "/", "name=systemd": "/", "pids": "/", "memory": "/process_api/abc", "cpu": "/", "cpuacct": "/"}},
		{"pure", map[string]string{"": "/sys/fs/cgroup"}, map[string]string{"": "/system.slice/nsfd.service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := cgroupFS
			t.Cleanup(func() { cgroupFS = old })
			cgroupFS.mountinfo = filepath.Join("testdata", "cgroup", tc.name+".mountinfo")
			cgroupFS.self = filepath.Join("testdata", "cgroup", tc.name+".cgroup")
			m, err := cgroupMounts()
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(m, tc.mounts) {
				t.Errorf("mounts %v, want %v", m, tc.mounts)
			}
			o, err := ownCgroups()
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(o, tc.owns) {
				t.Errorf("own groups %v, want %v", o, tc.owns)
			}
		})
	}
}

// TestWorkerGroupsOnAHybridHost: a worker has a group of its own in
// cgroup2 and v1 memory and joins its daemon's v1 pids group; its daemon's
// v1 cpu group too once the daemon has a cpu limit, none before.
func TestWorkerGroupsOnAHybridHost(t *testing.T) {
	tmp := t.TempDir()
	root := func(n string) string { return filepath.Join(tmp, n) }
	c := &Cgroups{v2: root("unified"), epoch: "e", v1: map[string]string{
		"memory": root("memory"), "pids": root("pids"), "cpu": root("cpu,cpuacct"), "cpuacct": root("cpu,cpuacct")}}
	d := &DaemonCgroup{c: c, name: "echo"}
	for _, dir := range d.dirs() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	check := func(w *workerCgroup, join []string) {
		t.Helper()
		own := []string{root("unified/" + w.rel), root("memory/" + w.rel)}
		if !slices.Equal(w.dirs, own) || !slices.Equal(w.joins, join) {
			t.Errorf("own groups %v and joined %v, want %v and %v", w.dirs, w.joins, own, join)
		}
		for _, dir := range own {
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("group not made: %v", err)
			}
		}
		var want []string
		for _, dir := range append(own, join...) {
			want = append(want, filepath.Join(dir, "cgroup.procs"))
		}
		if got := w.procsFiles(); !slices.Equal(got, want) {
			t.Errorf("joins %v, want %v", got, want)
		}
	}
	w, err := d.newWorker()
	if err != nil {
		t.Fatal(err)
	}
	check(w, []string{root("pids/echo")})
	d.cpuSet.Store(true)
	if w, err = d.newWorker(); err != nil {
		t.Fatal(err)
	}
	check(w, []string{root("pids/echo"), root("cpu,cpuacct/echo")})
	if ents, _ := os.ReadDir(root("pids/echo")); len(ents) != 0 {
		t.Errorf("worker groups made in v1 pids: %v", ents)
	}
}

// TestCgroupsOffIsDegraded: turned off, there are no groups, limits are
// refused with the reason, and nothing breaks.
func TestCgroupsOffIsDegraded(t *testing.T) {
	c := OpenCgroups(CgroupOptions{Off: true})
	defer c.Close()
	if c.Degraded() == "" {
		t.Fatal("not degraded")
	}
	if d, err := c.Daemon("x", Limits{}); d != nil || err != nil {
		t.Errorf("no limits: %v, %v", d, err)
	}
	if _, err := c.Daemon("x", Limits{MemoryMax: 64 << 20}); err == nil {
		t.Error("a limit without control groups was accepted")
	}
}

// TestMaxRSSReplacesAfterTwoReads: a ready worker above max_rss on two
// reads in a row is replaced like at max_requests; one read is a peak.
func TestMaxRSSReplacesAfterTwoReads(t *testing.T) {
	cp := newClockPool(t, func(c *Config) { c.MaxRSS = 100 << 20 })
	rss := map[int]int64{1: 200 << 20, 2: 50 << 20}
	cp.sys.rss = func(pid int) (int64, error) { return rss[pid], nil }
	cp.addWorker(1, true)
	cp.addWorker(2, true)
	cp.at(0)
	if cp.workers[1].replaced {
		t.Fatal("replaced after one read")
	}
	rss[2] = 200 << 20 // worker 2 peaks once
	cp.at(time.Second)
	if !cp.workers[1].replaced {
		t.Fatal("worker 1 not replaced after two reads above max_rss")
	}
	rss[2] = 50 << 20
	cp.at(2 * time.Second)
	if cp.workers[2].replaced {
		t.Error("worker 2 replaced for one read above max_rss")
	}
	if cp.rssRecycles != 1 {
		t.Errorf("rss recycles %d, want 1", cp.rssRecycles)
	}
}

// TestV1OOMKillsCountsGroupsBelow: v1 counts an OOM kill only in the
// victim's own group, so a worker's count adds up its group and those its
// processes made below it; a group with none below is read alone.
func TestV1OOMKillsCountsGroupsBelow(t *testing.T) {
	tmp := t.TempDir()
	c := &Cgroups{v1: map[string]string{"memory": tmp}}
	oom := func(dir string, n string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill "+n+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := filepath.Join(tmp, "echo", "w1")
	oom(w, "1")
	if n := c.v1OOMKills("echo/w1"); n != 1 {
		t.Errorf("a group alone: %d OOM kills, want 1", n)
	}
	oom(filepath.Join(w, "job"), "2")
	oom(filepath.Join(w, "job", "deeper"), "4")
	if n := c.v1OOMKills("echo/w1"); n != 7 {
		t.Errorf("with groups below: %d OOM kills, want 7", n)
	}
	if n := c.v1OOMKills("echo/gone"); n != 0 {
		t.Errorf("a group that is gone: %d OOM kills", n)
	}
}

// TestDaemonCloseKeepsGroupsAnotherPoolUses: a daemon's groups stay while
// another pool of it (a restart) has a worker's group below its cgroup2
// group, the v1 pids group too, where its workers are without one of their
// own; once that is gone, all go.
func TestDaemonCloseKeepsGroupsAnotherPoolUses(t *testing.T) {
	tmp := t.TempDir()
	root := func(n string) string { return filepath.Join(tmp, n) }
	c := &Cgroups{v2: root("unified"), epoch: "e", v1: map[string]string{"memory": root("memory"), "pids": root("pids")}}
	d := &DaemonCgroup{c: c, name: "echo"}
	for _, dir := range d.dirs() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w, err := d.newWorker() // the other pool's next worker, not started yet
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, dir := range d.dirs() {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("removed while another pool uses it: %v", err)
		}
	}
	for _, dir := range w.dirs {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	for _, dir := range d.dirs() {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s left once unused", dir)
		}
	}
}
