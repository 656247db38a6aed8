package worker

import (
	"sync"
	"time"
)

// Balancing pays off only for connections that live long: leaving one to
// a peer delays it up to BalanceWait, and connections that come and go
// spread over the workers by themselves. A worker estimates how long its
// connections live from how many it holds and how many it began lately
// (Little's law: lifetime = held ÷ arrival rate) and balances only while
// that is longLived or more. Measured on 2 cores (bench/, data path,
// 4 workers), balancing every connection-per-request cost 20% of the
// requests; keep-alive bursts, begun all at once and held, still balance.
const (
	turnoverWindow = 100 * time.Millisecond
	longLived      = 50 * time.Millisecond
)

// turnover counts the connections a worker began in the current
// turnoverWindow and in the one before.
type turnover struct {
	mu        sync.Mutex
	start     time.Time // of the current window
	cur, prev int
}

// roll moves the windows on to now. t.mu is held.
func (t *turnover) roll(now time.Time) {
	switch d := now.Sub(t.start); {
	case d >= 2*turnoverWindow:
		t.start, t.cur, t.prev = now, 0, 0
	case d >= turnoverWindow:
		t.start, t.cur, t.prev = t.start.Add(turnoverWindow), 0, t.cur
	}
}

// begin counts a connection begun at now.
func (t *turnover) begin(now time.Time) {
	t.mu.Lock()
	t.roll(now)
	t.cur++
	t.mu.Unlock()
}

// longLived reports whether held connections, with the arrivals counted,
// live longLived or more by Little's law: held ÷ (arrivals ÷ window).
func (t *turnover) longLived(held int, now time.Time) bool {
	t.mu.Lock()
	t.roll(now)
	arrivals := max(t.cur, t.prev)
	t.mu.Unlock()
	return int64(held)*int64(turnoverWindow) >= int64(arrivals)*int64(longLived)
}
