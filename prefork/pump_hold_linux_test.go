package prefork

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsfd/nsfd/logging"
)

// Helpers for the tests of the pump holding workers back for the log.
func init() {
	// pump-pace writes PUMP_LINES lines of about 100 bytes to stdout, as
	// fast as its pipe takes them, then "full N" to stderr: how many times
	// it found its stdout pipe full (its write would have blocked). It writes
	// without blocking, to count that, and waits for the pipe with poll(2).
	testHelpers["pump-pace"] = func() {
		n, _ := strconv.Atoi(os.Getenv("PUMP_LINES"))
		if err := unix.SetNonblock(1, true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		full := 0
		write := func(b []byte) {
			for len(b) > 0 {
				n, err := unix.Write(1, b)
				switch {
				case n > 0:
					b = b[n:]
				case err == unix.EAGAIN:
					full++
					_, _ = unix.Poll([]unix.PollFd{{Fd: 1, Events: unix.POLLOUT}}, -1)
				case err == unix.EINTR:
				default:
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
			}
		}
		pad := strings.Repeat("p", 90)
		var chunk []byte
		for i := range n {
			chunk = fmt.Appendf(chunk, "pace %d %s\n", i, pad)
			if len(chunk) >= 3900 { // under PIPE_BUF: all or nothing
				write(chunk)
				chunk = chunk[:0]
			}
		}
		write(chunk)
		fmt.Fprintf(os.Stderr, "full %d\n", full)
	}
}

// fifoSink opens a Sink whose file is a FIFO, and the FIFO's read end,
// which the test reads (or not) to make the sink as slow as it wants.
func fifoSink(t *testing.T, cfg logging.Config) (*logging.Sink, *os.File) {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0) // so that the sink's open does not block
	if err != nil {
		t.Fatal(err)
	}
	cfg.File = fifo
	sink, err := logging.Open(cfg)
	if err != nil {
		reader.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		reader.Close() // a write still stuck fails, and the sink can close
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sink.Close(ctx)
	})
	return sink, reader
}

// fifoLog is what a reader of the FIFO got.
type fifoLog struct {
	mu   sync.Mutex
	b    bytes.Buffer
	done chan struct{} // closed at EOF: the sink closed its end
}

// readFIFO reads r until EOF into a fifoLog: at most max bytes a tick of
// every, or as fast as it can if every is 0.
func readFIFO(r io.Reader, max int, every time.Duration) *fifoLog {
	l := &fifoLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var tick <-chan time.Time
		if every > 0 {
			tk := time.NewTicker(every)
			defer tk.Stop()
			tick = tk.C
		}
		buf := make([]byte, max)
		for {
			if tick != nil {
				<-tick
			}
			n, err := r.Read(buf)
			l.mu.Lock()
			l.b.Write(buf[:n])
			l.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return l
}

func (l *fifoLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// paceOutput is what the records of the log say of pump-pace workers.
type paceOutput struct {
	lines map[int]int // pid → lines in order from 0; -1 once one was missing or out of order
	full  map[int]int // pid → the N of its "full N"
	drops []string    // messages of "N log lines dropped" reports
}

func parsePace(t *testing.T, log string) paceOutput {
	t.Helper()
	out := paceOutput{lines: map[int]int{}, full: map[int]int{}}
	pad := " " + strings.Repeat("p", 90)
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if line == "" {
			continue
		}
		r, ok := logging.ParseRecord([]byte(line))
		switch {
		case !ok:
			t.Fatalf("not a record: %.100q", line)
		case r.Stream == "stdout":
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.Message, "pace "), pad))
			if err != nil {
				t.Fatalf("unexpected line: %.100q", line)
			}
			if next, seen := out.lines[r.PID]; next >= 0 && n == next || !seen && n == 0 {
				out.lines[r.PID] = n + 1
			} else {
				out.lines[r.PID] = -1
			}
		case r.Stream == "stderr":
			if f, ok := strings.CutPrefix(r.Message, "full "); ok {
				out.full[r.PID], _ = strconv.Atoi(f)
			}
		case strings.HasSuffix(r.Message, " log lines dropped"):
			out.drops = append(out.drops, r.Message)
		}
	}
	return out
}

// TestPumpSlowSinkHoldsWorkers: with a central log that writes slowly but
// steadily, the pump stops reading while the log's buffer is past its
// high-water mark: the workers block on their full pipes, and every line of
// every worker arrives, none dropped.
func TestPumpSlowSinkHoldsWorkers(t *testing.T) {
	const workers, lines = 4, 10000 // 4 MB of lines; the buffer holds 0.4 MB before holding
	sink, reader := fifoSink(t, logging.Config{Buffer: 8000, StallTimeout: 10 * time.Second})
	got := readFIFO(reader, 8<<10, time.Millisecond) // at most 8 MB/s: slower than the workers
	p := openTestPump(t)
	exited := make(chan int, workers)
	output := func(pid int, stream string) io.WriteCloser { return sink.LineWriter("d", pid, stream) }
	var pids []int
	for range workers {
		cmd := watchHelper(t, p, "t", output, func(pid int) { exited <- pid }, "pump-pace", "PUMP_LINES="+strconv.Itoa(lines))
		pids = append(pids, cmd.Process.Pid)
	}
	waitExits(t, exited, workers)
	p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "EOF of the FIFO", got.done)

	out := parsePace(t, got.String())
	if d := sink.Dropped(); d != 0 || len(out.drops) > 0 {
		t.Errorf("%d lines dropped, reports %q", d, out.drops)
	}
	full := 0
	for _, pid := range pids {
		if n := out.lines[pid]; n != lines {
			t.Errorf("worker %d: %d lines in order, want %d", pid, n, lines)
		}
		full += out.full[pid]
	}
	if full == 0 {
		t.Error("no worker ever found its pipe full: the sink was not slow enough to test holding")
	}
	t.Logf("workers found their pipes full %d times", full)
}

// TestPumpStalledSinkLetsGo: with a central log that stops (its file is a
// FIFO nobody reads), a worker's exit is reported at once all the same;
// after the stall timeout the pump reads on and the lines that do not fit
// are dropped, counted and reported; once the log moves again, nothing more
// is dropped.
func TestPumpStalledSinkLetsGo(t *testing.T) {
	const stall = 2 * time.Second
	const chatty, lines = 4, 20000 // 8 MB: far more than the buffer and pipes hold
	sink, reader := fifoSink(t, logging.Config{Buffer: 4000, StallTimeout: stall})
	p := openTestPump(t)
	output := func(pid int, stream string) io.WriteCloser { return sink.LineWriter("d", pid, stream) }
	exited := make(chan int, chatty)
	for range chatty {
		watchHelper(t, p, "t", output, func(pid int) { exited <- pid }, "pump-pace", "PUMP_LINES="+strconv.Itoa(lines))
	}
	// A worker that exits at once is reported at once: the chatty ones are
	// held until the stall timeout, the pidfds are not.
	quick := make(chan int, 1)
	watchHelper(t, p, "t", output, func(pid int) { quick <- pid }, "pump-lines", "PUMP_LINES=0")
	select {
	case <-quick:
	case pid := <-exited:
		t.Fatalf("chatty worker %d exited before the quick one: the sink did not hold it", pid)
	case <-time.After(30 * time.Second):
		t.Fatal("exit of the quick worker not reported")
	}
	waitExits(t, exited, chatty) // after the stall timeout, their lines dropped
	dropped := sink.Dropped()
	if dropped == 0 {
		t.Fatal("nothing dropped: the sink was not stalled")
	}

	// The log moves again: the drops are reported once it has caught up.
	got := readFIFO(reader, 64<<10, 0)
	want := fmt.Sprintf("%d log lines dropped", dropped)
	waitFor(t, "the drop report", 30*time.Second, func() bool { return strings.Contains(got.String(), " log lines dropped") })
	if out := parsePace(t, got.String()); len(out.drops) != 1 || out.drops[0] != want {
		t.Errorf("drop reports %q, want %q", out.drops, want)
	}

	// From now on nothing is lost: new workers' lines all arrive.
	const more = 3000
	var pids []int
	for range 2 {
		cmd := watchHelper(t, p, "t", output, func(pid int) { exited <- pid }, "pump-pace", "PUMP_LINES="+strconv.Itoa(more))
		pids = append(pids, cmd.Process.Pid)
	}
	waitExits(t, exited, len(pids))
	p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "EOF of the FIFO", got.done)
	if d := sink.Dropped(); d != dropped {
		t.Errorf("%d more lines dropped after the log moved again", d-dropped)
	}
	out := parsePace(t, got.String())
	for _, pid := range pids {
		if n := out.lines[pid]; n != more {
			t.Errorf("worker %d started after the stall: %d lines in order, want %d", pid, n, more)
		}
	}
}

// waitDone fails the test if done is not closed within 30s.
func waitDone(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
