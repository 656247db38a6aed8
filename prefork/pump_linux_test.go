package prefork

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/logging"
)

// Helpers for the pump tests: workers that write and exit.
func init() {
	// pump-lines writes PUMP_LINES numbered lines to stdout and to stderr,
	// interleaved, then PUMP_TAIL without a newline to stdout, and exits.
	testHelpers["pump-lines"] = func() {
		n, _ := strconv.Atoi(os.Getenv("PUMP_LINES"))
		out, errw := bufio.NewWriter(os.Stdout), bufio.NewWriter(os.Stderr)
		for i := range n {
			fmt.Fprintf(out, "out %d\n", i)
			fmt.Fprintf(errw, "err %d\n", i)
			if i%97 == 0 { // let the pump see the streams in many pieces
				out.Flush()
				errw.Flush()
			}
		}
		out.WriteString(os.Getenv("PUMP_TAIL"))
		out.Flush()
		errw.Flush()
	}
	// pump-orphan leaves a child holding its stdout that writes "late" once
	// its stdin (the test's pipe) is closed, then writes "early" and exits.
	testHelpers["pump-orphan"] = func() {
		exe, _ := os.Executable()
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "NSFD_TEST_HELPER=pump-late")
		cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println("early")
	}
	// pump-long writes a line of logging.MaxLineBytes two-byte characters,
	// then "last" without a newline.
	testHelpers["pump-long"] = func() {
		os.Stdout.WriteString(strings.Repeat("é", logging.MaxLineBytes) + "\nlast")
	}
	testHelpers["pump-late"] = func() {
		io.Copy(io.Discard, os.Stdin)
		fmt.Println("late")
	}
}

// outputLog records what a pump writes, for every stream of every worker,
// and what had arrived when each worker's exit was reported. Only the pump's
// goroutine writes to it, but the test reads it.
type outputLog struct {
	mu      sync.Mutex
	data    map[string]*strings.Builder // "pid stream" → bytes written
	closed  map[string]bool             // "pid stream" → writer closed
	atExit  map[int]string              // pid → its stdout when the exit was reported
	eofAt   map[int]bool                // pid → its stdout was closed when the exit was reported
	exited  chan int
	streams int // writers made
}

func newOutputLog() *outputLog {
	return &outputLog{
		data:   map[string]*strings.Builder{},
		closed: map[string]bool{},
		atExit: map[int]string{},
		eofAt:  map[int]bool{},
		exited: make(chan int, 1000),
	}
}

func (l *outputLog) writer(pid int, stream string) io.WriteCloser {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := strconv.Itoa(pid) + " " + stream
	l.data[key] = &strings.Builder{}
	l.streams++
	return logWriter{l, key}
}

// onExit records what the worker's stdout had when its exit was reported,
// and sends the pid to l.exited.
func (l *outputLog) onExit(pid int) {
	l.mu.Lock()
	if b := l.data[strconv.Itoa(pid)+" stdout"]; b != nil {
		l.atExit[pid] = b.String()
	}
	l.eofAt[pid] = l.closed[strconv.Itoa(pid)+" stdout"]
	l.mu.Unlock()
	l.exited <- pid
}

func (l *outputLog) get(pid int, stream string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := strconv.Itoa(pid) + " " + stream
	return l.data[key].String(), l.closed[key]
}

type logWriter struct {
	l   *outputLog
	key string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.data[w.key].Write(p)
}

func (w logWriter) Close() error {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	w.l.closed[w.key] = true
	return nil
}

// openTestPump opens a pump of its own for a test and closes it at the end.
func openTestPump(t *testing.T) *pump {
	t.Helper()
	p, err := newPump()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// watchHelper starts the test helper named helper with env on p, its output
// going to out, and returns its command.
func watchHelper(t *testing.T, p *pump, owner any, out func(int, string) io.WriteCloser, onExit func(int), helper string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append([]string{"NSFD_TEST_HELPER=" + helper, "GORACE=atexit_sleep_ms=0"}, env...)...)
	return watchCmd(t, p, owner, out, onExit, cmd)
}

func watchCmd(t *testing.T, p *pump, owner any, out func(int, string) io.WriteCloser, onExit func(int), cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	w, err := startWatched(cmd)
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	w.owner = owner
	w.exited = func() { onExit(pid) }
	if out != nil {
		for i, s := range streamNames {
			w.out[i] = out(pid, s)
		}
	}
	if err := p.add(w); err != nil {
		w.close()
		t.Fatal(err)
	}
	return cmd
}

// waitExits waits until n pids arrived on exited.
func waitExits(t *testing.T, exited <-chan int, n int) []int {
	t.Helper()
	var pids []int
	timeout := time.After(30 * time.Second)
	for len(pids) < n {
		select {
		case pid := <-exited:
			pids = append(pids, pid)
		case <-timeout:
			t.Fatalf("%d of %d exits reported", len(pids), n)
		}
	}
	return pids
}

func numbered(prefix string, n int, tail string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String() + tail
}

// TestPumpManyWorkersLoseNothing: the interleaved output of many workers
// on both streams arrives whole and in order per stream, the final line
// without a newline too, every stream is closed, and every exit is reported
// only after the worker's output.
func TestPumpManyWorkersLoseNothing(t *testing.T) {
	const workers, lines = 40, 3000 // 3000 lines are more than a pipe holds
	p := openTestPump(t)
	out := newOutputLog()
	for range workers {
		watchHelper(t, p, "t", out.writer, out.onExit, "pump-lines", "PUMP_LINES="+strconv.Itoa(lines), "PUMP_TAIL=no newline")
	}
	pids := waitExits(t, out.exited, workers)
	wantOut, wantErr := numbered("out", lines, "no newline"), numbered("err", lines, "")
	for _, pid := range pids {
		out.mu.Lock()
		atExit, eof := out.atExit[pid], out.eofAt[pid]
		out.mu.Unlock()
		if atExit != wantOut {
			t.Errorf("worker %d: exit reported after %d of %d bytes of stdout", pid, len(atExit), len(wantOut))
		}
		if !eof { // its writer closed: a final line without a newline is written before the exit
			t.Errorf("worker %d: exit reported before EOF of stdout", pid)
		}
		waitFor(t, "EOF on both streams", 10*time.Second, func() bool {
			_, c1 := out.get(pid, "stdout")
			_, c2 := out.get(pid, "stderr")
			return c1 && c2
		})
		if got, _ := out.get(pid, "stdout"); got != wantOut {
			t.Errorf("worker %d: stdout %d bytes, want %d", pid, len(got), len(wantOut))
		}
		if got, _ := out.get(pid, "stderr"); got != wantErr {
			t.Errorf("worker %d: stderr %d bytes, want %d", pid, len(got), len(wantErr))
		}
	}
}

// TestPumpExitNotHeldByOrphan: a child the worker leaves behind holding its
// stdout does not hold up the exit; what the child writes later still
// arrives, and the stream closes when the child exits.
func TestPumpExitNotHeldByOrphan(t *testing.T) {
	p := openTestPump(t)
	out := newOutputLog()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "NSFD_TEST_HELPER=pump-orphan", "GORACE=atexit_sleep_ms=0")
	cmd.Stdin = stdinR
	watchCmd(t, p, "t", out.writer, out.onExit, cmd)
	stdinR.Close()
	pid := waitExits(t, out.exited, 1)[0]
	got, closed := out.get(pid, "stdout")
	if got != "early\n" || closed {
		t.Fatalf("at exit: stdout %q, closed %v; want early, open", got, closed)
	}
	stdinW.Close() // the orphan writes "late" and exits
	waitFor(t, "the orphan's line and EOF", 10*time.Second, func() bool {
		_, closed := out.get(pid, "stdout")
		return closed
	})
	if got, _ := out.get(pid, "stdout"); got != "early\nlate\n" {
		t.Errorf("stdout %q", got)
	}
}

// TestPumpWithoutPidfd: a worker without a pidfd (a kernel before 5.3) is
// waited for by a thread, and reported the same way.
func TestPumpWithoutPidfd(t *testing.T) {
	p := openTestPump(t)
	out := newOutputLog()
	cmd := exec.Command("/bin/sh", "-c", "echo hello")
	w, err := startWatched(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	syscall.Close(w.fds[fdPid])
	w.fds[fdPid] = -1
	pid := cmd.Process.Pid
	w.owner, w.exited = "t", func() { out.onExit(pid) }
	for i, s := range streamNames {
		w.out[i] = out.writer(pid, s)
	}
	if err := p.add(w); err != nil {
		t.Fatal(err)
	}
	waitExits(t, out.exited, 1)
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.atExit[pid] != "hello\n" {
		t.Errorf("at exit: %q", out.atExit[pid])
	}
}

// TestPumpDropAndCloseLeaveNoFD: drop closes an owner's remaining pipes and
// writers (a pool that stopped), close the rest and the pump's own fds.
func TestPumpDropAndCloseLeaveNoFD(t *testing.T) {
	before := openFDs(t)
	p, err := newPump()
	if err != nil {
		t.Fatal(err)
	}
	out := newOutputLog()
	var cmds []*exec.Cmd
	for _, owner := range []string{"a", "b"} {
		for range 3 {
			cmds = append(cmds, watchCmd(t, p, owner, out.writer, func(int) {}, exec.Command("/bin/sleep", "1000")))
		}
	}
	// 2 for the pump, 3 a worker (pipes, pidfd) for it, 1 a worker for os.Process.
	if n := openFDs(t); n != before+2+6*(3+1) {
		t.Errorf("%d fds open with 6 workers, %d before: want 2 for the pump and 4 a worker", n, before)
	}
	p.drop("a")
	for _, c := range cmds[:3] {
		if _, closed := out.get(c.Process.Pid, "stderr"); !closed {
			t.Errorf("worker %d of a dropped owner: stderr writer not closed", c.Process.Pid)
		}
	}
	if _, closed := out.get(cmds[3].Process.Pid, "stdout"); closed {
		t.Error("drop closed another owner's writer")
	}
	p.close()
	p.close() // idempotent
	if _, closed := out.get(cmds[5].Process.Pid, "stdout"); !closed {
		t.Error("close left a writer open")
	}
	for _, c := range cmds {
		c.Process.Kill()
		c.Wait() // releases os.Process's pidfd
	}
	if n := openFDs(t); n != before {
		t.Errorf("%d fds open after close, %d before", n, before)
	}
	if err := p.add(&watch{fds: [3]int{-1, -1, -1}}); err != errPumpClosed {
		t.Errorf("add after close: %v", err)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	// The tests' pump reaps orphans on SIGCHLD, reading /proc as it does:
	// no pass while counting.
	defer holdReaper()()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory's own fd
}

// TestPumpLongLinesThroughSink: a worker's output through the pump into a
// real Sink's LineWriter: a line of more than logging.MaxLineBytes becomes
// several records, and a final line without a newline is written at EOF.
func TestPumpLongLinesThroughSink(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "nsfd.log")
	sink, err := logging.Open(logging.Config{File: logFile, Format: logging.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	p := openTestPump(t)
	exited := make(chan int, 1)
	output := func(pid int, stream string) io.WriteCloser { return sink.LineWriter("d", pid, stream) }
	watchHelper(t, p, "t", output, func(pid int) { exited <- pid }, "pump-long")
	waitExits(t, exited, 1)
	p.close() // closes the streams, writing the final line, if EOF did not
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		rec, ok := logging.ParseRecord([]byte(line))
		if !ok {
			t.Fatalf("not a record: %.80q", line)
		}
		msgs = append(msgs, rec.Message)
	}
	long := strings.Repeat("é", logging.MaxLineBytes) // 2 bytes each: two records
	if len(msgs) != 3 || msgs[0]+msgs[1] != long || len(msgs[0]) > logging.MaxLineBytes || msgs[2] != "last" {
		t.Errorf("%d records of %d bytes, last %.20q", len(msgs), len(strings.Join(msgs, "")), msgs[len(msgs)-1])
	}
}

// TestPumpStalledSinkStallsNothing: with the central log stalled for real
// (its file is a FIFO nobody reads), workers' output is read and dropped
// and counted, and every exit is still reported at once.
func TestPumpStalledSinkStallsNothing(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0) // held, never read
	if err != nil {
		t.Fatal(err)
	}
	sink, err := logging.Open(logging.Config{File: fifo, Buffer: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		reader.Close() // the sink's write fails, and it can close
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sink.Close(ctx)
	}()
	p := openTestPump(t)
	exited := make(chan int, 100)
	output := func(pid int, stream string) io.WriteCloser { return sink.LineWriter("d", pid, stream) }
	const workers = 10
	for range workers {
		watchHelper(t, p, "t", output, func(pid int) { exited <- pid }, "pump-lines", "PUMP_LINES=5000")
	}
	waitExits(t, exited, workers)
	if sink.Dropped() == 0 {
		t.Error("nothing dropped: the sink was not stalled")
	}
}
