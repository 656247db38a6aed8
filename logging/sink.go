package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// entry is one record waiting in the buffer.
type entry struct {
	master bool        // data is a record hclog formatted
	level  hclog.Level // of a master record
	time   time.Time   // when the line was read or the record logged
	daemon string
	pid    int
	stream string
	data   []byte // the hclog record, or the worker's line; owned by the entry
}

// size is what the entry counts against Config.BufferBytes.
func (e *entry) size() int64 { return int64(len(e.data) + len(e.daemon) + len(e.stream) + 64) }

// lvl is the entry's level: a master record's own, Info for worker lines and
// for master records of no particular level.
func (e *entry) lvl() hclog.Level {
	if !e.master || e.level == hclog.NoLevel {
		return hclog.Info
	}
	return e.level
}

// Sink is the central log. Its methods are safe for concurrent use; none of
// those that write a record ever waits for the target.
type Sink struct {
	logger   hclog.Logger // the master's root logger, writing into the buffer
	queue    chan entry
	maxBytes int64

	mu     sync.RWMutex // guards closed against the sends into queue
	closed bool

	bytes   atomic.Int64  // data bytes in queue
	dropped atomic.Uint64 // records dropped, ever

	// Flow control: see Hold. The marks are in records and in bytes.
	highRecs, lowRecs   int
	highBytes, lowBytes int64
	stallAfter          time.Duration
	held                atomic.Bool  // a hold is on: holdc is open
	stalled             atomic.Bool  // holds are off until the target completes a call
	busySince           atomic.Int64 // unix ns when the writer's current call into the target began; 0 when none
	holdMu              sync.Mutex   // guards holdc and stallTimer, and the changes of held and stalled
	holdc               chan struct{}
	stallTimer          *time.Timer

	reopenc  chan chan error
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when the writer has finished
	closeErr error         // set by the writer before done is closed

	// Owned by the writer goroutine.
	target    target
	fmt       *formatter
	cur       entry        // the record being written
	out       []byte       // a batch of formatted records
	ends      []int        // where each record of out ends
	direct    hclog.Logger // writes straight to the target: the drop reports
	reported  uint64       // dropped count already reported
	sinceDrop int          // records written since an unreported drop
	failing   bool         // the last write to the target failed
	directOK  bool         // the last record of direct reached the target
	errOut    io.Writer    // where write failures are reported
}

// Open validates cfg, opens its target and starts the writer goroutine.
// Close the Sink to stop it.
func Open(cfg Config) (*Sink, error) {
	cfg, level, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var t target
	switch cfg.Target {
	case TargetFile:
		if t, err = openFileTarget(cfg.File, cfg.MaxSize, cfg.MaxFiles); err != nil {
			return nil, err
		}
	case TargetSyslog:
		if t, err = openSyslogTarget(cfg, localSyslogPaths); err != nil {
			return nil, err
		}
	default:
		t = newStderrTarget()
	}
	return start(cfg, level, t, os.Stderr), nil
}

// openWith is Open with a given target, for tests.
func openWith(cfg Config, t target, errOut io.Writer) (*Sink, error) {
	cfg, level, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return start(cfg, level, t, errOut), nil
}

func start(cfg Config, level hclog.Level, t target, errOut io.Writer) *Sink {
	s := &Sink{
		queue:      make(chan entry, cfg.Buffer),
		maxBytes:   cfg.BufferBytes,
		highRecs:   max(cfg.Buffer*highWaterPercent/100, 1),
		lowRecs:    cfg.Buffer * lowWaterPercent / 100,
		highBytes:  max(cfg.BufferBytes*highWaterPercent/100, 1),
		lowBytes:   cfg.BufferBytes * lowWaterPercent / 100,
		stallAfter: cfg.StallTimeout,
		reopenc:    make(chan chan error),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		target:     t,
		fmt:        newFormatter(cfg.Format == FormatJSON),
		errOut:     errOut,
	}
	opts := func(out io.Writer, level hclog.Level) *hclog.LoggerOptions {
		return &hclog.LoggerOptions{
			Name:               ModuleRoot,
			Level:              level,
			Output:             out,
			JSONFormat:         cfg.Format == FormatJSON,
			JSONEscapeDisabled: true,
			TimeFormat:         TimeLayout,
			TimeFn:             func() time.Time { return time.Now().UTC() },
			Color:              hclog.ColorOff,
		}
	}
	s.logger = hclog.New(opts(bufferWriter{s}, level))
	s.direct = hclog.New(opts(directWriter{s}, hclog.Trace))
	go s.run()
	return s
}

// Logger returns the master's root logger, named "nsfd"; Named("echo") on it
// gives the logger of daemon echo, module "nsfd.echo". Its records below the
// configured level are not written.
func (s *Sink) Logger() hclog.Logger { return s.logger }

// Dropped returns how many records were dropped since Open: because the
// buffer was full, because the target failed to write them, or because they
// came after Close.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Reopen closes the log file and opens it again at its path, for logrotate
// (which renames the file, then signals SIGUSR1); for target syslog it
// closes the connection and connects again. Records still in the buffer go
// to the new file or connection. It waits for the writer goroutine, so for a
// target that is stuck it returns ctx's error. On a closed Sink it returns
// ErrClosed.
func (s *Sink) Reopen(ctx context.Context) error {
	req := make(chan error, 1)
	select {
	case s.reopenc <- req:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking records, writes every record already buffered, closes
// the target and returns its error. If ctx ends first, Close returns ctx's
// error and the writer finishes in the background; calling Close again waits
// again. Close is idempotent; records written after it are dropped.
func (s *Sink) Close(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.release(false) // nothing is taken any more: no point holding anybody
		close(s.stop)
	})
	select {
	case <-s.done:
		return s.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue puts e into the buffer, or drops and counts it. It never blocks
// (but for the instant Close takes to mark the Sink closed).
func (s *Sink) enqueue(e entry) {
	n := e.size()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	if s.bytes.Add(n) > s.maxBytes {
		s.bytes.Add(-n)
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- e:
	default:
		s.bytes.Add(-n)
		s.dropped.Add(1)
	}
}

// run is the writer goroutine: it owns the target and drains the buffer.
func (s *Sink) run() {
	defer close(s.done)
	for {
		select {
		case e := <-s.queue:
			s.write(e)
		case req := <-s.reopenc:
			s.busy()
			err := s.target.Reopen()
			s.progress()
			if err != nil {
				err = fmt.Errorf("reopen log: %w", err)
			}
			req <- err
		case <-s.stop:
			s.drain()
			s.reportDropped(true, 0)
			s.busy()
			s.closeErr = s.target.Close()
			s.progress()
			return
		}
	}
}

// drain writes what is left in the buffer. Close marked the Sink closed
// before it closed stop: nothing is sent to queue any more, so once the queue
// is empty it stays empty.
func (s *Sink) drain() {
	for {
		select {
		case e := <-s.queue:
			s.write(e)
		default:
			return
		}
	}
}

// maxBatchBytes bounds the formatted records the writer gives a batchTarget
// in one call: one write(2), or a few around a rotation. A batch is the
// records waiting when the writer takes the first one, up to this bound.
const maxBatchBytes = 256 << 10

// write writes e, taken from the buffer, and, for a target that takes
// batches, every record waiting after it up to maxBatchBytes; then it
// reports drops if due.
func (s *Sink) write(e entry) {
	bt, ok := s.target.(batchTarget)
	if !ok {
		s.writeOne(e)
		return
	}
	s.out, s.ends = s.out[:0], s.ends[:0]
	var size int64
	for more := true; more; {
		size += e.size()
		s.out = append(s.out, s.format(&e)...)
		s.ends = append(s.ends, len(s.out))
		more = false
		if len(s.out) < maxBatchBytes {
			select {
			case e = <-s.queue:
				more = true
			default:
			}
		}
	}
	s.taken(size)
	s.busy()
	n, err := bt.WriteBatch(s.out, s.ends)
	s.progress()
	s.result(err)
	if lost := len(s.ends) - n; lost > 0 {
		s.dropped.Add(uint64(lost))
	}
	s.reportDropped(false, len(s.ends))
}

// writeOne formats e and writes it to the target alone.
func (s *Sink) writeOne(e entry) {
	s.taken(e.size())
	p := s.format(&e)
	s.cur = e // a field, so that the target's pointer costs no allocation
	ok := s.writeTarget(&s.cur, p)
	s.cur = entry{}
	if !ok {
		s.dropped.Add(1)
	}
	s.reportDropped(false, 1)
}

// format renders e in the Sink's format; the result is valid until the
// next call.
func (s *Sink) format(e *entry) []byte {
	if e.master {
		return s.fmt.master(e.data)
	}
	return s.fmt.worker(e.time, e.daemon, e.pid, e.stream, e.data)
}

// writeTarget writes one record and reports whether it was written.
func (s *Sink) writeTarget(e *entry, p []byte) bool {
	s.busy()
	err := s.target.Write(e, p)
	s.progress()
	return s.result(err)
}

// result reports whether a write that returned err wrote its records: it
// did for nil and for a warning, which is reported on errOut. The first
// failure of a run of them is reported on errOut too.
func (s *Sink) result(err error) bool {
	var w warning
	switch {
	case err == nil:
		s.failing = false
		return true
	case errors.As(err, &w):
		fmt.Fprintf(s.errOut, "nsfd: log: %v\n", err)
		s.failing = false
		return true
	default:
		if !s.failing {
			fmt.Fprintf(s.errOut, "nsfd: log: write failed, dropping records: %v\n", err)
		}
		s.failing = true
		return false
	}
}

// Flow control. The pump that reads workers' pipes asks Hold before each
// read; while the buffer is past the high-water mark it stops reading, the
// pipes fill and the workers wait in write(2), until the writer has taken the
// buffer down to the low-water mark and closes the channel Hold returned. The
// space above the high-water mark is the headroom for the master's own
// records, which are never held back, and for what the pump reads at a
// worker's exit.
const (
	highWaterPercent = 50 // of Config.Buffer and of Config.BufferBytes
	lowWaterPercent  = 25
)

// bufferWriter is the hclog output of the master logger: each Write is one
// whole record (hclog formats a record into its own buffer and hands it over
// in a single Write or LevelWrite), which is copied into the buffer.
type bufferWriter struct{ s *Sink }

var _ hclog.LevelWriter = bufferWriter{}

// Write enqueues p as one master record of no particular level.
func (w bufferWriter) Write(p []byte) (int, error) {
	return w.LevelWrite(hclog.NoLevel, p)
}

// LevelWrite enqueues p as one master record at level.
func (w bufferWriter) LevelWrite(level hclog.Level, p []byte) (int, error) {
	w.s.enqueue(entry{master: true, level: level, time: time.Now(), data: append([]byte(nil), p...)})
	return len(p), nil
}

// directWriter is the hclog output of the writer goroutine's own records: it
// writes them to the target at once. Only the writer goroutine may use it.
type directWriter struct{ s *Sink }

var _ hclog.LevelWriter = directWriter{}

// Write writes p as one master record of no particular level.
func (w directWriter) Write(p []byte) (int, error) {
	return w.LevelWrite(hclog.NoLevel, p)
}

// LevelWrite formats and writes p to the target, noting whether that worked.
func (w directWriter) LevelWrite(level hclog.Level, p []byte) (int, error) {
	e := entry{master: true, level: level, time: time.Now(), data: p}
	w.s.directOK = w.s.writeTarget(&e, w.s.fmt.master(p))
	return len(p), nil
}
