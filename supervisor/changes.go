package supervisor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// changeHub watches the registry the registrar holds (PostgreSQL's
// LISTEN/NOTIFY, SQLite's file watch: registry.Watcher) with one watch for
// the whole master, and fans its notifications out to the watchers of the
// resolver socket: the clients of the master's workers, which drop a cached
// resolution as soon as it changes. While the registry is unreachable, or
// after it was reopened, the watch is made again with back-off; each of its
// failures ends every subscriber's stream ("lost"), so that they know they
// may have missed changes.
type changeHub struct {
	reg  *registrar
	beat time.Duration // the longest back-off

	mu       sync.Mutex
	watching bool // the hub's watch is up
	subs     map[*changeSub]struct{}
}

var _ registry.Watcher = (*changeHub)(nil)

// changeSub is one subscriber: a resolver-socket stream.
type changeSub struct {
	events chan hubEvent
	gone   chan error // receives why the hub dropped it (its watch failed, it fell behind)
}

type hubEvent struct {
	ready bool // else a change of name
	name  string
}

// subBuffer is how many events a slow subscriber may lag behind before it is
// dropped (its client watches again, and knows it missed changes).
const subBuffer = 256

var errFellBehind = errors.New("the watcher fell behind")

func newChangeHub(reg *registrar) *changeHub {
	return &changeHub{reg: reg, beat: reg.heartbeat, subs: map[*changeSub]struct{}{}}
}

// run keeps the hub's watch up until ctx ends.
func (h *changeHub) run(ctx context.Context) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if live := h.reg.live.Load(); live != nil {
			if w, ok := live.Registry.(registry.Watcher); ok {
				err := w.Watch(ctx, h.ready, h.changed)
				h.lost(err)
				if ctx.Err() != nil {
					return
				}
				h.reg.log.Debug("registry watch ended; watching again", "error", err)
			}
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), h.beat)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			h.lost(ctx.Err())
			return
		case <-t.C:
		}
	}
}

func (h *changeHub) ready() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watching = true
	h.broadcastLocked(hubEvent{ready: true})
}

func (h *changeHub) changed(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcastLocked(hubEvent{name: name})
}

// lost ends every subscriber's stream: from now on, changes are not heard
// until the watch is up again.
func (h *changeHub) lost(err error) {
	if err == nil {
		err = errors.New("the registry watch ended")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watching = false
	for s := range h.subs {
		s.gone <- err
		delete(h.subs, s)
	}
}

func (h *changeHub) broadcastLocked(ev hubEvent) {
	for s := range h.subs {
		select {
		case s.events <- ev:
		default:
			s.gone <- errFellBehind
			delete(h.subs, s)
		}
	}
}

// Watch is registry.Watcher's, for one subscriber of the hub: it calls
// ready once the hub watches (at once if it does), changed for each change
// the hub hears, and returns when ctx ends or the hub's watch fails.
func (h *changeHub) Watch(ctx context.Context, ready func(), changed func(name string)) error {
	s := &changeSub{events: make(chan hubEvent, subBuffer), gone: make(chan error, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	if h.watching {
		s.events <- hubEvent{ready: true}
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}()
	for {
		// Deliver what was queued before a failure that came after it.
		select {
		case ev := <-s.events:
			deliver(ev, ready, changed)
			continue
		default:
		}
		select {
		case ev := <-s.events:
			deliver(ev, ready, changed)
		case err := <-s.gone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func deliver(ev hubEvent, ready func(), changed func(string)) {
	if ev.ready {
		ready()
	} else {
		changed(ev.name)
	}
}
