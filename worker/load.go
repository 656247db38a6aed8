package worker

import (
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
)

// DefaultIdleGrace is how long a worker that has just gone idle waits
// before it tells the master (Load.IdleGrace, Server.IdleGrace).
//
// A worker that serves connection after connection is idle for a few tens
// of microseconds between two of them: the time a client takes to connect
// again, or the kernel to hand over the next queued connection. Reporting
// each of those gaps costs the master two wake-ups per connection (~25 µs
// of CPU), which on a busy machine is taken from the workers. Two
// milliseconds cover such a gap many times over, also on a loaded machine
// where the next accept is delayed by scheduling, while staying far below
// anything the spare-server policy measures (spawning a worker takes
// milliseconds, min_child_ttl is seconds): the master sees a worker idle at
// most 2 ms late, and it still sees it busy at once.
const DefaultIdleGrace = 2 * time.Millisecond

// DefaultRequestsInterval is how stale the master's count of a worker's
// requests may get while the worker stays busy or never fills up
// (Load.RequestsInterval): the worker reports REQUESTS=n at least this
// often while its count moves.
const DefaultRequestsInterval = time.Second

// Load counts the requests of a worker and reports its load to the master
// on NOTIFY_SOCKET. Call Begin when a request (a connection) starts and End
// when it is done; Serve does so for every connection it accepts.
//
// The worker is busy while Concurrency requests are in progress. With a
// Concurrency above 1 the report has hysteresis: once reported busy, the
// worker is reported idle again only when fewer than IdleMark requests are
// in progress (by default three quarters of Concurrency: busy at 64 of 64,
// idle again below 48), so a worker that hovers around its limit does not
// flip the master's spare-server count at every connection. Going
// busy is reported at once, as BUSY=1 with the count of requests begun so
// far (REQUESTS=n), so the spare-server policy reacts without delay. Going
// idle is deferred by IdleGrace and forgotten if the worker is full again
// (or back at IdleMark) before then: a worker serving back-to-back connections tells the master
// once that it is busy and once, when the run ends, that it is idle again,
// as one datagram "BUSY=0\nREQUESTS=n". While the count moves without such
// a report, REQUESTS=n is sent at least every RequestsInterval; when the
// count reaches the worker's NSFD_MAX_REQUESTS it is sent at once, so the
// master starts the replacement without delay.
//
// Without NOTIFY_SOCKET a Load only counts. Begin and End return nothing:
// errors of the reports they send, at once or deferred, go to Logger.
// The zero value is ready to use; the fields must not change after the
// first call. A Load is safe for concurrent use. Once it first defers a
// report it holds one timer until Close: on Linux a timerfd and the one
// goroutine that waits on it, no runtime timer (see fdTimer for why).
type Load struct {
	// Concurrency is how many requests in progress make the worker busy;
	// 0 means DefaultConcurrency.
	Concurrency int
	// IdleMark is the low-water mark: a worker reported busy is reported
	// idle again once fewer than IdleMark requests are in progress. 0 (or
	// a value outside 1..Concurrency) means DefaultIdleMark(Concurrency).
	IdleMark int
	// IdleGrace is how long going idle is deferred; 0 means
	// DefaultIdleGrace, and a negative value reports it at once.
	IdleGrace time.Duration
	// RequestsInterval is how long the count may go unreported while it
	// moves; 0 means DefaultRequestsInterval.
	RequestsInterval time.Duration
	// Logger receives errors of deferred reports; nil: slog.Default().
	Logger *slog.Logger

	mu         sync.Mutex
	ready      bool // the settings below are set
	limit      int
	mark       int // IdleMark, defaulted
	grace      time.Duration
	every      time.Duration
	maxReq     int    // NSFD_MAX_REQUESTS; 0: unlimited
	addr       string // NOTIFY_SOCKET, read at each call
	active     int    // requests in progress
	requests   int    // requests begun
	reported   int    // the last REQUESTS=n sent
	lastReport time.Time
	busy       bool      // the master was last told BUSY=1
	idleAt     time.Time // non-zero: BUSY=0 is deferred until then
	timer      loadTimer // created on first use
	timerAt    time.Time // when timer fires; zero: stopped
	closed     bool
}

// Begin counts a request that starts, and reports BUSY=1 if it fills the
// worker up.
func (l *Load) Begin() {
	if err := l.begin(false); err != nil {
		l.logger().Warn("worker: report to the master failed", "error", err)
	}
}

// End marks a request as done. If the worker was full, going idle is
// reported after IdleGrace, unless the worker fills up again first.
func (l *Load) End() {
	if err := l.end(); err != nil {
		l.logger().Warn("worker: report to the master failed", "error", err)
	}
}

// Requests returns the number of requests begun.
func (l *Load) Requests() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests
}

// Stopping sends STOPPING=1 with the count, REQUESTS=n, and a BUSY=0 still
// deferred, and takes the worker off the pool's load board: call it when
// the worker stops accepting and leaves. Requests in
// progress may still End; call Close once they have.
func (l *Load) Stopping() error {
	theBoard().leave() // peers no longer leave connections to this worker
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setup()
	words := []string{NotifyStopping}
	if !l.idleAt.IsZero() {
		words = []string{NotifyIdle, NotifyStopping}
		l.idleAt, l.busy = time.Time{}, false
	}
	err := l.report(words...)
	l.arm()
	return err
}

// Close sends what is still deferred (BUSY=0, REQUESTS=n) at once and
// stops the timer. After Close, Begin and End only count. Close is
// idempotent.
func (l *Load) Close() error {
	t, err := l.close()
	if t != nil {
		t.Close() // without l.mu: a firing under way takes it
	}
	return err
}

// close is Close under l.mu; it returns the timer to close.
func (l *Load) close() (loadTimer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, nil
	}
	l.setup()
	var (
		words []string
		err   error
	)
	if !l.idleAt.IsZero() {
		words = []string{NotifyIdle}
		l.idleAt, l.busy = time.Time{}, false
	}
	if words != nil || l.requests > l.reported {
		err = l.report(words...)
	}
	l.closed = true
	l.arm()
	return l.timer, err
}

// begin counts a request. A manual begin (Busy) never counts more than
// Concurrency requests in progress, so that a stray Busy cannot keep the
// worker busy for good. It returns the error of a report sent now.
func (l *Load) begin(manual bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setup()
	l.requests++
	if !manual || l.active < l.limit {
		l.active++
		theBoard().add(1)
	}
	if l.closed {
		return nil
	}
	var words []string
	switch {
	case !l.idleAt.IsZero() && l.active >= l.mark:
		l.idleAt = time.Time{} // the master still has it busy: forget the deferred BUSY=0
	case !l.busy && l.active >= l.limit:
		l.busy = true
		words = []string{NotifyBusy}
	}
	var err error
	if words != nil || l.maxReq > 0 && l.requests >= l.maxReq && l.reported < l.maxReq {
		err = l.report(words...)
	}
	l.arm()
	return err
}

// end marks a request as done; an end without a begin is ignored. It
// returns the error of a report sent now.
func (l *Load) end() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setup()
	if l.active == 0 {
		return nil
	}
	l.active--
	theBoard().add(-1)
	if l.closed || l.active != l.mark-1 || !l.busy || !l.idleAt.IsZero() {
		return nil
	}
	if l.grace < 0 || l.addr == "" {
		l.busy = false
		err := l.report(NotifyIdle)
		l.arm()
		return err
	}
	l.idleAt = time.Now().Add(l.grace)
	l.arm()
	return nil
}

// setup applies the defaults and reads the environment: NOTIFY_SOCKET at
// every call, NSFD_MAX_REQUESTS once. l.mu is held.
func (l *Load) setup() {
	l.addr = os.Getenv(EnvNotifySocket)
	if l.ready {
		return
	}
	l.ready = true
	l.limit = l.Concurrency
	if l.limit <= 0 {
		l.limit = DefaultConcurrency
	}
	l.mark = l.IdleMark
	if l.mark <= 0 || l.mark > l.limit {
		l.mark = DefaultIdleMark(l.limit)
	}
	l.grace = l.IdleGrace
	if l.grace == 0 {
		l.grace = DefaultIdleGrace
	}
	l.every = l.RequestsInterval
	if l.every <= 0 {
		l.every = DefaultRequestsInterval
	}
	n, err := MaxRequests()
	if err != nil {
		l.logger().Warn("worker: max_requests unknown", "error", err)
	}
	l.maxReq = n
	l.lastReport = time.Now()
}

// report sends words and REQUESTS=n as one datagram. l.mu is held.
func (l *Load) report(words ...string) error {
	l.reported = l.requests
	if l.addr == "" {
		return nil
	}
	l.lastReport = time.Now()
	return notifyTo(l.addr, append(words, NotifyRequests+strconv.Itoa(l.requests))...)
}

// arm makes sure the timer fires by the time the next deferred report is
// due. A timer armed earlier is left alone: it fires, finds nothing or
// less due, and arms itself again. So a run of back-to-back requests does
// not re-arm the timer at every End, and a request that cancels a deferred
// BUSY=0 does not stop it: while requests keep coming, the timer fires
// about once per IdleGrace, whatever the rate of requests. Without
// NOTIFY_SOCKET, and after Close, the timer is stopped. l.mu is held.
func (l *Load) arm() {
	if l.closed || l.addr == "" {
		if !l.timerAt.IsZero() {
			l.timer.Stop()
			l.timerAt = time.Time{}
		}
		return
	}
	due := l.idleAt
	if l.requests > l.reported {
		if t := l.lastReport.Add(l.every); due.IsZero() || t.Before(due) {
			due = t
		}
	}
	if due.IsZero() || !l.timerAt.IsZero() && !l.timerAt.After(due) {
		return
	}
	l.timerAt = due
	if l.timer == nil {
		l.timer = newLoadTimer(l.fire)
	}
	l.timer.Reset(time.Until(due))
}

// fire sends the reports that are due: a deferred BUSY=0, or a count that
// has gone unreported for RequestsInterval.
func (l *Load) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.timerAt.IsZero() && !now.Before(l.timerAt) {
		l.timerAt = time.Time{} // this is that firing; an earlier one, since re-armed, leaves it
	}
	if l.closed {
		return
	}
	var words []string
	if !l.idleAt.IsZero() && !now.Before(l.idleAt) {
		words = []string{NotifyIdle}
		l.idleAt, l.busy = time.Time{}, false
	}
	if words != nil || l.requests > l.reported && !now.Before(l.lastReport.Add(l.every)) {
		if err := l.report(words...); err != nil {
			l.logger().Warn("worker: report to the master failed", "error", err)
		}
	}
	l.arm()
}

// DefaultIdleMark is the IdleMark of a Load (or Server) of the given
// concurrency: concurrency - concurrency/4, so 64 → 48, 16 → 12, and for
// a concurrency below 4 the concurrency itself (idle again as soon as one
// request ends, the one-connection-per-process model).
func DefaultIdleMark(concurrency int) int {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	return concurrency - concurrency/4
}

// logger returns where l logs.
func (l *Load) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// defaultLoad is the Load of Busy, Idle and Stopping: one request at a
// time.
var defaultLoad = &Load{Concurrency: 1}
