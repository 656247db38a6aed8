//go:build linux

package main

// Fault injection, scenario 4: the central log's sink stalled for real (the
// two forms and the report: chaos_test.go).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestChaosLogSinkBlocked stalls the central log for real: its file is a
// FIFO whose only reader (the test) stops reading, so once the pipe is full
// the sink's writer goroutine is stuck in write(2). A worker then floods
// its stdout to fill the sink's buffer too. Meanwhile workers are killed:
// they are replaced as fast as ever, the control socket answers, and the
// load is served. Once the reader reads again, the log says how many lines
// were dropped.
func TestChaosLogSinkBlocked(t *testing.T) {
	sc := chaosParams()
	e := newEnv(t)
	fifo := filepath.Join(e.dir, "var", "log", "central.fifo")
	flag := filepath.Join(e.dir, "flood")
	tap := newFIFOTap(t, fifo, e.logFile()) // before start: its cleanup runs after the master's
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/central.fifo\nlevel = debug\n")
	e.write("echo.ini", echoConf("min_servers = 4\nmax_servers = 4\nmin_spare_servers = 1\nmax_spare_servers = 3\nstart_seconds = 10ms\nmax_requests = 0\n"))
	// seq writes 30000 lines, more than the sink's buffer of 16384 records.
	e.write("flood.ini", "command = /bin/sh -c \"test -e "+flag+" && seq 30000; exec sleep 1000\"\nport = 127.0.0.1:0\nstart_seconds = 10ms\n"+
		"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	t.Cleanup(tap.resume) // a failed test must not leave the master's log stuck while it stops
	addr := m.addr("echo")
	c := newChaosCtl(t, e)
	waitFor(t, "4 ready echo workers and a flood worker", 15*time.Second, func() bool {
		return len(c.ready("echo", nil)) == 4 && len(c.ready("flood", nil)) == 1
	})
	if d := c.metric("nsfd_log_lines_dropped_total"); d != 0 {
		t.Fatalf("%v log lines dropped before the sink was stalled", d)
	}
	// Before: how fast replacements are with the log flowing, under the same load.
	l := startLoad(addr, 8)
	before := killLoop(t, m, c, "echo", 4, 100*time.Millisecond, sc.logBlock*3/5)

	tap.pause()
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	flooder := c.ready("flood", nil)[0]
	syscall.Kill(flooder, syscall.SIGKILL) // its replacement floods
	waitFor(t, "the pipe to fill and the sink to drop lines", 20*time.Second, func() bool {
		return tap.full() && c.metric("nsfd_log_lines_dropped_total") > 0
	})
	stalled := time.Now()
	failedBefore := l.failed.Load()

	// Supervision while the sink is stuck.
	during := killLoop(t, m, c, "echo", 4, 100*time.Millisecond, sc.logBlock)
	t0 := time.Now()
	c.status()
	statusTook := time.Since(t0)
	if !tap.full() {
		t.Fatal("the pipe drained while nobody read it: the sink was not stalled")
	}
	stalledFor := time.Since(stalled)
	dropped := c.metric("nsfd_log_lines_dropped_total")
	_, failed := l.halt()
	failed -= failedBefore

	tap.resume()
	resumed := time.Now()
	dropRE := regexp.MustCompile(`(\d+) log lines dropped`)
	var reported string
	waitFor(t, "the dropped lines to be reported", 30*time.Second, func() bool {
		mm := dropRE.FindStringSubmatch(e.log())
		if mm == nil {
			return false
		}
		reported = mm[1]
		return true
	})
	drained := time.Since(resumed)
	// The log flows again: a kill after the stall is in it.
	victim := c.ready("echo", nil)[0]
	syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, "a record after the stall", 15*time.Second, func() bool {
		return strings.Contains(e.log(), "worker exited unexpectedly; replacing it: pid="+strconv.Itoa(victim))
	})

	chaosReport(t, "log sink stalled", sc,
		fig("sink stalled (pipe full, lines dropping)", stalledFor.Round(time.Millisecond).String(), "≥ "+sc.logBlock.String(), ""),
		fig("kill → replacement started, log flowing: median / p99 / max", before.spawn.String(), "", ""),
		fig("kill → replacement started, sink stalled: median / p99 / max", during.spawn.String(), "unaffected", ""),
		fig("kill → replacement ready, log flowing: median / p99 / max", before.ready.String(), "", ""),
		fig("kill → replacement ready, sink stalled: median / p99 / max", during.ready.String(), "unaffected", ""),
		fig("control-socket status at the end of the stall", statusTook.Round(100*time.Microsecond).String(), "", ""),
		fig("lines dropped (metric while stalled / first report)", fmt.Sprintf("%v / %s", dropped, reported), "counted", ""),
		fig("resume → drop report in the log", drained.Round(time.Millisecond).String(), "", ""),
		fig("requests failed / kills while stalled", fmt.Sprintf("%d / %d", failed, during.kills), "failed ≤ kills", metMissed(failed <= int64(during.kills))),
	)
	during.check(t)
	if statusTook > 3*time.Second {
		t.Errorf("the control socket took %v to answer while the sink was stalled", statusTook)
	}
	if failed > int64(during.kills) {
		t.Errorf("%d requests failed for %d kills: %v", failed, during.kills, l.errs)
	}
}

// fifoTap is the only reader of the FIFO the master logs into: it copies
// what it reads to a regular file (where env.log finds it), and stops
// reading on pause, so that the master's writes block once the pipe is full.
type fifoTap struct {
	f    *os.File // opened read-write: the master's open for writing never waits, and reads never see EOF
	out  *os.File
	mu   sync.Mutex
	gate chan struct{} // closed while reading is allowed
	done chan struct{}
}

func newFIFOTap(t testing.TB, fifo, out string) *fifoTap {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(fifo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	o, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	tap := &fifoTap{f: f, out: o, gate: make(chan struct{}), done: make(chan struct{})}
	close(tap.gate)
	go tap.run()
	t.Cleanup(func() {
		tap.resume()
		f.Close() // ends the pending read
		<-tap.done
		o.Close()
	})
	return tap
}

func (tap *fifoTap) run() {
	defer close(tap.done)
	buf := make([]byte, 64<<10)
	for {
		tap.mu.Lock()
		gate := tap.gate
		tap.mu.Unlock()
		<-gate
		n, err := tap.f.Read(buf)
		tap.out.Write(buf[:n])
		if err != nil {
			return
		}
	}
}

// pause stops reading after the read in progress, if any.
func (tap *fifoTap) pause() {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	select {
	case <-tap.gate:
		tap.gate = make(chan struct{})
	default:
	}
}

func (tap *fifoTap) resume() {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	select {
	case <-tap.gate:
	default:
		close(tap.gate)
	}
}

// full reports whether the pipe has no room left: the master's next write
// blocks. Counting the bytes queued would not tell: a write that does not
// fit in the last page of the pipe starts a new one, so a pipe whose every
// page is taken can hold well under its size in bytes. poll(2) asks the
// kernel the question itself: the tap's descriptor is open for writing too,
// and a pipe is writable while it has a free page.
func (tap *fifoTap) full() bool {
	rc, err := tap.f.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var perr error
	fds := []unix.PollFd{{Events: unix.POLLOUT}}
	rc.Control(func(fd uintptr) {
		fds[0].Fd = int32(fd)
		n, perr = unix.Poll(fds, 0)
	})
	return perr == nil && (n == 0 || fds[0].Revents&unix.POLLOUT == 0)
}
