package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// How a Client learns of registry changes. When its Resolver is a
// registry.Watcher (the PostgreSQL registry, LISTEN/NOTIFY; the SQLite
// registry, a watch on its file; the master's resolver socket, which
// forwards the master's watch), the Client watches it from its first
// resolve until Close, in one goroutine, again with back-off after the
// watch fails. Each notification drops the cached resolution of its name
// (of every name for registry.AnyName) at once. While the watch is up, a
// resolution is used until a change drops it, or for at most the registry's
// MaxAge (a node that died stops refreshing its heartbeat and sends no
// notification: MaxAge is when Resolve stops returning it); while it is
// down, for CacheTTL, as without a watch. A resolution read while a change
// arrived is used once and read again.

// watcher is the state of a Client's watch.
type watcher struct {
	start   sync.Once
	stop    context.CancelFunc // ends the watch; nil until it starts
	done    chan struct{}      // closed when the watch goroutine returns
	healthy atomic.Bool        // the watch is up
	// gen counts changes to every name: AnyName, and each time the watch
	// comes up (it may have missed changes while it was down).
	gen atomic.Uint64
}

// startWatch starts watching the Resolver, once, if it can be watched and
// the Client caches.
func (c *Client) startWatch() {
	c.watch.start.Do(func() {
		w, ok := c.reg.(registry.Watcher)
		if !ok || c.opts.CacheTTL < 0 || c.opts.NoWatch {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.watch.stop, c.watch.done = cancel, make(chan struct{})
		go c.watchLoop(ctx, w)
	})
}

// watchLoop keeps the watch up until ctx ends.
func (c *Client) watchLoop(ctx context.Context, w registry.Watcher) {
	defer close(c.watch.done)
	var backoff time.Duration
	for ctx.Err() == nil {
		// Why it failed does not matter: resolutions fall back to CacheTTL
		// until it is up again.
		_ = w.Watch(ctx, c.watchReady, c.changed)
		c.watch.healthy.Store(false)
		if ctx.Err() == nil {
			c.sawUnreachable()
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// watchReady is called once the watch is up: what was cached before may
// have missed a change.
func (c *Client) watchReady() {
	c.watch.gen.Add(1)
	c.watch.healthy.Store(true)
}

// changed drops the cached resolution of name, or of every name.
func (c *Client) changed(name string) {
	if name == registry.AnyName {
		c.watch.gen.Add(1)
		return
	}
	c.mu.RLock()
	e := c.names[name]
	c.mu.RUnlock()
	if e != nil {
		e.gen.Add(1)
	}
}

// stopWatch ends the watch and waits for it.
func (c *Client) stopWatch() {
	c.watch.start.Do(func() {}) // no watch starts after Close
	if c.watch.stop != nil {
		c.watch.stop()
		<-c.watch.done
	}
}

// fresh reports whether r, the cached resolution of e, may still be used at
// now.
func (c *Client) fresh(e *nameEntry, r *resolved, now time.Time) bool {
	if r.gen != e.gen.Load() || r.global != c.watch.gen.Load() {
		return false // a change since it was read
	}
	if now.Before(r.expires) {
		return true
	}
	return r.watched && c.watch.healthy.Load() && now.Before(r.watchExpires)
}

// maxAge is the registry's MaxAge as the client uses it.
func (c *Client) maxAge() time.Duration {
	if c.opts.MaxAge > 0 {
		return c.opts.MaxAge
	}
	return registry.DefaultMaxAge
}
