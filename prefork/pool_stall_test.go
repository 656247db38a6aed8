package prefork

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeNotes is a noteSource whose datagrams a test queues: ones the reader
// has read (queued) and ones still in the kernel (inKernel), which only a
// flush reads.
type fakeNotes struct {
	queued, inKernel []note
	flushes          int
}

func (f *fakeNotes) ready() <-chan struct{} { return nil }

func (f *fakeNotes) take(flush bool) []note {
	if flush {
		f.flushes++
		f.queued, f.inKernel = append(f.queued, f.inKernel...), nil
	}
	out := f.queued
	f.queued = nil
	return out
}

// ping is a WATCHDOG=1 from pid.
func ping(pid int) note { return note{pid: pid, msg: Message{Watchdog: true, Busy: -1}} }

// clockPool is a pool driven by hand: a fake clock, fake notes, kills
// recorded instead of sent, no process and no goroutine. Its workers are
// added with addWorker; p.step(now) is one turn of its loop.
type clockPool struct {
	*Pool
	t0      time.Time
	clock   time.Time // what the pool's clock says
	notes   *fakeNotes
	log     *bytes.Buffer
	killed  []int
	spawned int
}

func newClockPool(t *testing.T, mod func(*Config)) *clockPool {
	t.Helper()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cp := &clockPool{t0: t0, clock: t0, notes: &fakeNotes{}, log: &bytes.Buffer{}}
	cfg := Config{
		Name:         "t",
		Command:      []string{"/bin/true"},
		Shim:         []string{"/bin/true"},
		Notify:       true,
		Policy:       PolicyOptions{MinServers: 2, MaxServers: 4, MaxSpareServers: 3, MinChildTTL: time.Hour},
		ReadyTimeout: 3 * time.Second,
		Watchdog:     2 * time.Second,
		Logger:       hclog.New(&hclog.LoggerOptions{Output: cp.log, Level: hclog.Debug}),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.notes = cp.notes
	p.sys = poolSys{
		now: func() time.Time { return cp.clock },
		start: func(context.Context, *Pool, int, int) (*Process, error) {
			cp.spawned++
			return newProcess(900 + cp.spawned), nil // a handle only: nothing is signalled through it
		},
		signal:    func(*Process, os.Signal) error { return nil },
		killGroup: func(pid int) error { cp.killed = append(cp.killed, pid); return nil },
	}
	cp.Pool = p
	return cp
}

// addWorker adds a worker started at t0 (+ the offset), ready or not.
func (cp *clockPool) addWorker(pid int, ready bool) {
	w := &worker{pid: pid, slot: len(cp.workers), started: cp.t0, lastPing: cp.t0, state: StateStarting}
	if ready {
		w.ready, w.state, w.idleSince = true, StateIdle, cp.t0
	}
	cp.workers[pid] = w
}

// at sets the clock to t0 + d and runs one turn of the loop.
func (cp *clockPool) at(d time.Duration) {
	cp.clock = cp.t0.Add(d)
	cp.step(context.Background(), cp.clock)
}

func (cp *clockPool) kills() []int {
	out := slices.Clone(cp.killed)
	slices.Sort(out)
	return out
}

// The loop runs on time while the workers ping (t0..3s), then the master
// stops for 8 s; the pings of that time were lost (the socket's queue is
// small). Waking, it must notice its own stall and kill nobody; workers
// that stay silent after that are killed one watchdog period later.
func TestPoolStallGivesWorkersAFreshWatchdog(t *testing.T) {
	cp := newClockPool(t, nil)
	cp.addWorker(101, true)
	cp.addWorker(102, true)
	for s := range 4 {
		cp.notes.queued = append(cp.notes.queued, ping(101), ping(102))
		cp.at(time.Duration(s) * time.Second)
	}
	if !cp.expect.Equal(cp.t0.Add(4 * time.Second)) {
		t.Fatalf("with a watchdog armed the loop means to run at %v, want every stallCheck (t0+4s)", cp.expect.Sub(cp.t0))
	}
	cp.at(12 * time.Second) // 8 s late: SIGSTOP, a VM pause
	if k := cp.kills(); len(k) != 0 {
		t.Fatalf("workers %v killed after the master's own stall", k)
	}
	if !strings.Contains(cp.log.String(), "the master was stalled; giving every worker a fresh watchdog and ready_timeout period: late=8s") {
		t.Errorf("the stall is not in the log:\n%s", cp.log)
	}
	// 101 pings again, 102 stays silent: one watchdog period after the stall, 102 goes.
	cp.notes.queued = append(cp.notes.queued, ping(101))
	cp.at(13 * time.Second)
	if k := cp.kills(); len(k) != 0 {
		t.Fatalf("workers %v killed within the fresh period", k)
	}
	cp.at(14 * time.Second)
	if k := cp.kills(); !slices.Equal(k, []int{102}) {
		t.Fatalf("killed %v, want the silent worker 102 only, one watchdog period after the stall", k)
	}
}

// Late by less than stallThreshold is no stall: deadlines hold.
func TestPoolSmallDelayIsNoStall(t *testing.T) {
	cp := newClockPool(t, func(c *Config) { c.Policy.MinServers = 1 })
	cp.addWorker(101, true)
	cp.at(0)
	cp.at(time.Second)
	cp.at(2*time.Second + 900*time.Millisecond) // 900 ms late
	if k := cp.kills(); !slices.Equal(k, []int{101}) {
		t.Fatalf("killed %v, want 101: it missed its watchdog and the master was on time", k)
	}
	if strings.Contains(cp.log.String(), "stalled") {
		t.Error("a 900 ms delay was taken for a stall")
	}
}

// Pings still in the kernel's queue when a deadline comes are read before
// it is judged.
func TestPoolReadsQueuedPingsBeforeJudging(t *testing.T) {
	cp := newClockPool(t, nil)
	cp.addWorker(101, true)
	cp.addWorker(102, true)
	cp.at(0)
	cp.at(time.Second)
	cp.notes.inKernel = []note{ping(101)} // sent, not read by the reader yet
	cp.at(2 * time.Second)
	if k := cp.kills(); !slices.Equal(k, []int{102}) {
		t.Fatalf("killed %v, want only 102: 101's ping was in the queue", k)
	}
	if cp.notes.flushes == 0 {
		t.Error("the deadline was judged without reading the kernel's queue")
	}
}

// ready_timeout gets the same fresh period after a stall.
func TestPoolStallGivesWorkersAFreshReadyTimeout(t *testing.T) {
	cp := newClockPool(t, func(c *Config) { c.Watchdog = 0 })
	cp.addWorker(101, false)
	cp.addWorker(102, false)
	cp.at(0)
	cp.at(time.Second)
	cp.at(10 * time.Second) // stalled 8 s: past the 3 s ready_timeout
	if k := cp.kills(); len(k) != 0 {
		t.Fatalf("workers %v killed for ready_timeout after the master's own stall", k)
	}
	cp.notes.queued = append(cp.notes.queued, note{pid: 101, msg: Message{Ready: true, Busy: -1}})
	cp.at(11 * time.Second)
	cp.at(12 * time.Second)
	cp.at(13 * time.Second)
	if k := cp.kills(); !slices.Equal(k, []int{102}) {
		t.Fatalf("killed %v, want 102, still not ready ready_timeout after the stall", k)
	}
	if w := cp.workers[102]; w.cause != CauseReadyTimeout {
		t.Errorf("102's cause %q", w.cause)
	}
}

// A worker that said STOPPING=1 and exited is read as leaving on its own,
// however the exit and the datagram race; and its datagram cannot reach a
// later worker that gets its pid.
func TestPoolReadsAnExitedWorkersLastNotesFirst(t *testing.T) {
	var exits []Event
	cp := newClockPool(t, func(c *Config) {
		c.Watchdog = 0
		c.Observer = func(e Event) {
			if e.Kind == EventExit {
				exits = append(exits, e)
			}
		}
	})
	cp.addWorker(101, true)
	cp.addWorker(102, true)
	cp.at(0)
	cp.clock = cp.t0.Add(5 * time.Second)
	cp.notes.inKernel = []note{{pid: 101, msg: Message{Stopping: true, Busy: -1}}}
	self := newProcess(os.Getpid()) // reaping it fails at once: the exit has no status
	cp.workerExited(exitEvent{pid: 101, proc: self})
	cp.exitsArrived()
	if len(exits) != 1 || exits[0].Cause != CauseExited || cp.restarts != 0 {
		t.Fatalf("exits %+v, restarts %d; want one exit, cause exited (it said STOPPING=1), no restart", exits, cp.restarts)
	}
	cp.addWorker(101, true) // the pid comes back, for a new worker
	cp.handleNotes(cp.notes.take(false), cp.t0.Add(6*time.Second))
	if w := cp.workers[101]; w.cause != CauseNone || w.state != StateIdle {
		t.Fatalf("the new worker with pid 101 got the old one's STOPPING=1: %+v", w)
	}
}
