package worker

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// BalanceWait is how long a worker that holds two connections or more
// leaves a pending connection to a peer of its pool that holds fewer and
// waits in accept (Balance) before it takes the connection itself: long enough for an idle peer
// woken by the same connection to accept it, short enough that a peer that
// does not (stopped, descheduled, gone) costs a new connection little.
const BalanceWait = time.Millisecond

// loadBoard is this process's view of the pool's load board
// (EnvLoadBoard): a shared mapping of LoadBoardEntries entries, one of
// which, once joined, is this worker's. Only this process writes its
// entry's count word (the master only frees the pid word), so that word
// is the truth once joined: held and waiting are kept here too for the
// time before.
type loadBoard struct {
	mem []byte // the mapping; nil: no board

	mu      sync.RWMutex // join and leave write me; add and wait read it while they write the entry
	pid     uint32
	me      atomic.Int32 // index of this worker's entry; -1: none
	held    atomic.Int32 // connections held, also while not on the board
	waiting atomic.Int32 // goroutines waiting in accept
	turn    turnover     // connections begun lately, once on the board
}

// boardWaiting is the bit of an entry's count word that says its worker
// is waiting for a connection (in accept, not at its limit, not leaving
// one to a peer): a peer may leave a connection only to such a worker.
const boardWaiting = 1 << 31

// yieldFrom is how many connections a worker holds before it leaves new
// ones to less loaded peers. From one, two workers woken by a burst of
// connections race for every one of them while each holds one, and a
// burst of four still split 3:1 in most rounds (measured on 2 cores, 40
// rounds, examples/http): the worker that had left the second connection
// to its peer took the third and fourth first. From two, the first worker
// takes two and leaves the rest, and four connections split 2:2 in 40 of
// 40 rounds against 3 of 40 without a board.
const yieldFrom = 2

// theBoard is the board of EnvLoadBoard, opened at the first use.
var theBoard = sync.OnceValue(func() *loadBoard {
	b := &loadBoard{pid: uint32(os.Getpid())}
	b.me.Store(-1)
	if path := os.Getenv(EnvLoadBoard); path != "" {
		b.mem = mapBoard(path) // nil if it cannot be mapped: no balancing
	}
	return b
})

// word returns the 32-bit word i of the board (2n: entry n's pid, 2n+1:
// its count and boardWaiting).
func (b *loadBoard) word(i int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&b.mem[4*i]))
}

// entry returns this worker's count word, or nil off the board.
func (b *loadBoard) entry() *atomic.Uint32 {
	if b.mem == nil {
		return nil
	}
	n := b.me.Load()
	if n < 0 {
		return nil
	}
	return b.word(2*int(n) + 1)
}

// join claims an entry for this worker, if it has none, and publishes what
// it holds. It reports whether the worker is on the board.
func (b *loadBoard) join() bool {
	if b.mem == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.me.Load() >= 0 {
		return true
	}
	for n := range LoadBoardEntries {
		if b.word(2*n).CompareAndSwap(0, b.pid) || b.word(2*n).Load() == b.pid {
			w := uint32(max(b.held.Load(), 0)) &^ boardWaiting
			if b.waiting.Load() > 0 {
				w |= boardWaiting
			}
			b.word(2*n + 1).Store(w)
			b.me.Store(int32(n))
			return true
		}
	}
	return false // full: this worker balances nothing, its peers still do
}

// leave frees this worker's entry: it no longer accepts, so its peers
// must not leave connections to it.
func (b *loadBoard) leave() {
	if b.mem == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := b.me.Load(); n >= 0 {
		b.me.Store(-1)
		b.word(2*int(n)).CompareAndSwap(b.pid, 0)
	}
}

// add counts delta connections more (or fewer) held by this worker.
func (b *loadBoard) add(delta int32) {
	if b.mem == nil {
		b.held.Add(delta)
		return
	}
	b.mu.RLock() // the entry stays this worker's meanwhile, and join sees held before or after
	defer b.mu.RUnlock()
	b.held.Add(delta)
	e := b.entry()
	if e == nil {
		return
	}
	if delta > 0 {
		b.turn.begin(time.Now())
	}
	for {
		old := e.Load()
		n := int64(old&^boardWaiting) + int64(delta)
		if e.CompareAndSwap(old, old&boardWaiting|uint32(min(max(n, 0), boardWaiting-1))) {
			return
		}
	}
}

// wait marks this worker as waiting for a connection (on) or not.
func (b *loadBoard) wait(on bool) {
	d := int32(-1)
	if on {
		d = 1
	}
	if b.mem == nil {
		b.waiting.Add(d)
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	b.waiting.Add(d)
	e := b.entry()
	if e == nil {
		return
	}
	for { // the bit follows the count of waiters, whichever goroutine last changed it
		w := b.waiting.Load()
		if w > 0 {
			e.Or(boardWaiting)
		} else {
			e.And(^uint32(boardWaiting))
		}
		if b.waiting.Load() == w {
			return
		}
	}
}

// busy reports whether this worker is on the board, holds yieldFrom
// connections or more, and its connections live long (turnover): then it
// looks at its peers before it accepts.
func (b *loadBoard) busy() bool {
	if b.entry() == nil {
		return false
	}
	held := b.held.Load()
	return held >= yieldFrom && b.turn.longLived(int(held), time.Now())
}

// yield reports whether a live peer on the board is waiting for a
// connection and holds at most half as many as this worker (which holds
// yieldFrom or more): a pending connection is better served there. Half,
// not merely fewer: under connect-per-request load the counts of busy
// workers differ by one or two all the time, and leaving a connection
// for that costs more than the imbalance. A peer whose process is gone
// (the master frees its entry once it has reaped it) does not count.
func (b *loadBoard) yield() bool {
	if !b.busy() {
		return false
	}
	mine := uint32(max(b.held.Load(), 0))
	for n := range LoadBoardEntries {
		pid := b.word(2 * n).Load()
		if pid == 0 || pid == b.pid {
			continue
		}
		if c := b.word(2*n + 1).Load(); c&boardWaiting == 0 || 2*(c&^boardWaiting) > mine {
			continue
		}
		if processAlive(int(pid)) {
			return true
		}
	}
	return false
}
