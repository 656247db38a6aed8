package prefork

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeProc is a process table for attribution tests: pid → its parent,
// start time and control group.
type fakeProc struct {
	procs map[int]fakeProcess
	reads int // stat and cgroup reads
}

type fakeProcess struct {
	ppid  int
	start uint64
	group string
}

var errNoSuchProcess = errors.New("no such process")

func (f *fakeProc) stat(pid int) (int, uint64, error) {
	f.reads++
	p, ok := f.procs[pid]
	if !ok {
		return 0, 0, errNoSuchProcess
	}
	return p.ppid, p.start, nil
}

func (f *fakeProc) cgroup(pid int) (string, error) {
	f.reads++
	p, ok := f.procs[pid]
	if !ok {
		return "", errNoSuchProcess
	}
	return p.group, nil
}

// attributionFixture: the master is 100; workers 200 and 300 of this pool;
// 400 is another daemon's worker. groups says whether the workers have
// control groups.
func attributionFixture(groups bool) (*senders, *fakeProc, map[int]*worker) {
	g := func(s string) string {
		if groups {
			return s
		}
		return ""
	}
	fp := &fakeProc{procs: map[int]fakeProcess{
		200: {ppid: 100, start: 1, group: g("/nsfd/100/web/w1")},
		300: {ppid: 100, start: 1, group: g("/nsfd/100/web/w10")},
		201: {ppid: 200, start: 2, group: g("/nsfd/100/web/w1")},     // a child of 200
		202: {ppid: 201, start: 3, group: g("/nsfd/100/web/w1")},     // its grandchild
		203: {ppid: 100, start: 4, group: g("/nsfd/100/web/w1")},     // double-forked: reparented to the master
		204: {ppid: 201, start: 5, group: g("/nsfd/100/web/w1/sub")}, // in a group below the worker's
		301: {ppid: 300, start: 6, group: g("/nsfd/100/web/w10")},    // a child of 300
		400: {ppid: 100, start: 1, group: g("/nsfd/100/other/w2")},
		401: {ppid: 400, start: 7, group: g("/nsfd/100/other/w2")}, // another daemon's child
		402: {ppid: 100, start: 8, group: g("/nsfd/100/other/w2")}, // another daemon's orphan
		500: {ppid: 1, start: 9, group: g("/user.slice")},          // a stranger
		600: {ppid: 601, start: 9},                                 // a loop in a made-up table
		601: {ppid: 600, start: 9},
	}}
	workers := map[int]*worker{200: {pid: 200}, 300: {pid: 300}}
	s := &senders{proc: fp, master: 100, cache: map[int]senderEntry{}, hinted: map[int]bool{},
		groupOf: func(w *worker) string { return fp.procs[w.pid].group }}
	return s, fp, workers
}

func TestSendersOwner(t *testing.T) {
	for _, groups := range []bool{true, false} {
		s, _, workers := attributionFixture(groups)
		for _, tc := range []struct {
			pid  int
			want int
			why  string
		}{
			{201, 200, "a child"},
			{202, 200, "a grandchild"},
			{204, 200, "a child in a group below"},
			{301, 300, "a child of the other worker (w10 is not below w1)"},
			{401, 0, "another daemon's child"},
			{402, 0, "another daemon's orphan"},
			{400, 0, "another daemon's worker"},
			{500, 0, "a stranger"},
			{999, 0, "gone"},
			{600, 0, "a parent loop ends"},
		} {
			if got := s.owner(tc.pid, workers, true); got != tc.want {
				t.Errorf("groups=%v: %s (%d) counts for %d, want %d", groups, tc.why, tc.pid, got, tc.want)
			}
		}
		// A double-forked process was reparented to the master: only its
		// control group still tells whose it is.
		want := 0
		if groups {
			want = 200
		}
		if got := s.owner(203, workers, true); got != want {
			t.Errorf("groups=%v: double-forked 203 counts for %d, want %d", groups, got, want)
		}
	}
}

func TestSendersCacheChecksStartTime(t *testing.T) {
	s, fp, workers := attributionFixture(false)
	if got := s.owner(202, workers, true); got != 200 {
		t.Fatalf("202 counts for %d", got)
	}
	fp.reads = 0
	if got := s.owner(202, workers, true); got != 200 || fp.reads != 1 {
		t.Fatalf("cached: %d after %d reads, want 200 after 1 (the start time)", got, fp.reads)
	}
	// 202 exited and its pid went to another daemon's process.
	fp.procs[202] = fakeProcess{ppid: 400, start: 77}
	if got := s.owner(202, workers, true); got != 0 {
		t.Fatalf("a reused pid counts for %d, want 0", got)
	}
	// A reaped worker is forgotten, and its tree with it.
	s.owner(201, workers, true)
	s.forget(200)
	for pid, e := range s.cache {
		if e.worker == 200 {
			t.Fatalf("cache entry %d → 200 kept after the worker was forgotten", pid)
		}
	}
	// Without the cache nothing is kept.
	s.owner(301, workers, false)
	if _, ok := s.cache[301]; ok {
		t.Fatal("an uncached lookup filled the cache")
	}
}

func TestSendersCacheBounded(t *testing.T) {
	fp := &fakeProc{procs: map[int]fakeProcess{}}
	s := &senders{proc: fp, master: 1, cache: map[int]senderEntry{}, groupOf: func(*worker) string { return "" }}
	for pid := 2; pid < 2+3*maxSenderCache; pid++ {
		fp.procs[pid] = fakeProcess{ppid: 1, start: 1}
		s.owner(pid, nil, true)
		if len(s.cache) > maxSenderCache {
			t.Fatalf("cache holds %d pids", len(s.cache))
		}
	}
}

// TestPoolNotifyAccess drives handleNote: with NotifyAll a child's READY=1
// makes its worker ready; without, it is ignored and a hint logged once
// per worker.
func TestPoolNotifyAccess(t *testing.T) {
	for _, all := range []bool{true, false} {
		var log bytes.Buffer
		p, err := NewPool(Config{Name: "web", Command: []string{"x"}, Shim: []string{"x"}, Notify: true, NotifyAll: all,
			Policy: PolicyOptions{MinServers: 2, MaxServers: 4, MaxSpareServers: 2},
			Logger: hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Warn})})
		if err != nil {
			t.Fatal(err)
		}
		s, _, workers := attributionFixture(true)
		p.senders, p.workers = s, workers
		now := time.Now()
		ready := Message{Ready: true, Busy: -1}
		p.handleNote(note{pid: 401, msg: ready}, now) // another daemon's: never
		p.handleNote(note{pid: 202, msg: ready}, now)
		p.handleNote(note{pid: 201, msg: Message{Busy: -1, Status: "child", HasStatus: true}}, now)
		if workers[300].ready || workers[200].ready != all {
			t.Errorf("all=%v: worker 200 ready %v, 300 ready %v", all, workers[200].ready, workers[300].ready)
		}
		if all && workers[200].status != "child" {
			t.Errorf("all: STATUS from a child not taken: %q", workers[200].status)
		}
		hints := strings.Count(log.String(), "notify_access = all would accept it")
		if want := map[bool]int{true: 0, false: 1}[all]; hints != want {
			t.Errorf("all=%v: %d hints logged, want %d:\n%s", all, hints, want, log.String())
		}
		if p.malformed != map[bool]int{true: 1, false: 3}[all] {
			t.Errorf("all=%v: %d dropped", all, p.malformed)
		}
	}
}
