package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// nameEntry is the cache of one name.
type nameEntry struct {
	mu  sync.Mutex // one registry query at a time
	cur atomic.Pointer[resolved]
	rr  atomic.Uint32 // round robin: where the next call starts
	gen atomic.Uint64 // changes of this name the watch announced
}

// resolved is one answer of the registry for a name.
type resolved struct {
	name    string
	eps     []registry.Endpoint
	targets []*target // the endpoints a stream can be dialled to, in Resolve's order
	local   int       // targets[:local] are the local node's
	expires time.Time
	rr      *atomic.Uint32
	// What the cache knew when it asked the registry: the name's and
	// the global change counts, and whether the watch was up; with it up,
	// the answer is used until watchExpires unless a change comes.
	gen, global  uint64
	watched      bool
	watchExpires time.Time
}

// target is one endpoint of a name, with the codec its daemon speaks.
type target struct {
	ep   registry.Endpoint
	pool *pool
}

// Resolve returns the endpoints of the daemon called name as the registry
// gave them, the local node's first (see registry.Registry.Resolve), from the
// cache while it is fresh (Options.CacheTTL). While the registry cannot be
// reached, the last answer is used. Errors wrap registry.ErrNotFound or
// registry.ErrStale when no daemon of that name is running.
func (c *Client) Resolve(ctx context.Context, name string) ([]registry.Endpoint, error) {
	r, err := c.targets(ctx, name)
	if err != nil {
		return nil, err
	}
	return append([]registry.Endpoint(nil), r.eps...), nil
}

// targets returns the name's endpoints, from the cache or the registry.
func (c *Client) targets(ctx context.Context, name string) (*resolved, error) {
	c.mu.RLock()
	e, closed := c.names[name], c.closed
	c.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	now := c.now()
	if e != nil {
		if r := e.cur.Load(); r != nil && c.fresh(e, r, now) {
			return r, nil
		}
	} else {
		c.startWatch()
		c.mu.Lock()
		if e = c.names[name]; e == nil {
			e = &nameEntry{}
			c.names[name] = e
		}
		c.mu.Unlock()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.cur.Load()
	if old != nil && c.fresh(e, old, c.now()) {
		return old, nil // another caller just refreshed it
	}
	// What the cache knows before it asks: a change announced from here
	// on makes the answer stale.
	gen, global, watched := e.gen.Load(), c.watch.gen.Load(), c.watch.healthy.Load()
	r, err := c.lookup(ctx, name)
	if err == nil {
		c.sawReachable()
	}
	if err != nil {
		if old != nil && ctx.Err() == nil && c.keepOnError(err) {
			// The registry is unreachable, or just came back: keep using
			// what it said last, and ask again in a while.
			keep := *old
			keep.expires = c.now().Add(c.ttl())
			keep.gen, keep.global, keep.watched = gen, global, false
			e.cur.Store(&keep)
			return &keep, nil
		}
		return nil, err
	}
	now = c.now()
	r.rr = &e.rr
	r.expires = now.Add(c.ttl())
	r.gen, r.global, r.watched = gen, global, watched
	r.watchExpires = now.Add(c.maxAge())
	if c.opts.CacheTTL > 0 {
		e.cur.Store(r)
	}
	return r, nil
}

// keepOnError reports whether a lookup that failed with err leaves the last
// resolution in use. It does when the registry could not be reached (the
// daemons keep serving while it is down). It does too when the registry
// says every endpoint is stale within MaxAge of the time it first answered
// again after it could not be reached: the masters could not write their
// heartbeats either while it was down, and they come back on their own
// retries, maybe later than this client (TestFleet saw them 2 s after
// PostgreSQL restarted, 3 heartbeats being 0.6 s); a stale row then means
// an outage, not a dead daemon. A name that is not registered is believed at
// once.
func (c *Client) keepOnError(err error) bool {
	switch {
	case errors.Is(err, registry.ErrNotFound):
		c.sawReachable()
		return false
	case errors.Is(err, registry.ErrStale):
		back := c.sawReachable()
		return back != 0 && c.now().Sub(time.Unix(0, back)) < c.maxAge()
	}
	c.sawUnreachable()
	return true
}

// sawUnreachable records that the registry could not be reached now.
func (c *Client) sawUnreachable() { c.unreachable.Store(c.now().UnixNano()) }

// sawReachable records that the registry answered now and returns when it
// first answered after it was last unreachable (Unix nanoseconds); 0 if it
// never was.
func (c *Client) sawReachable() int64 {
	last := c.unreachable.Load()
	if last == 0 {
		return 0
	}
	back := c.back.Load()
	if back < last {
		now := c.now().UnixNano()
		if c.back.CompareAndSwap(back, now) {
			return now
		}
		back = c.back.Load()
	}
	return back
}

func (c *Client) ttl() time.Duration { return max(c.opts.CacheTTL, 0) }

// lookup asks the registry for the name's endpoints and encodings.
func (c *Client) lookup(ctx context.Context, name string) (*resolved, error) {
	eps, err := c.reg.Resolve(ctx, name, registry.ResolveOptions{LocalNode: c.opts.LocalNode, MaxAge: c.opts.MaxAge})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	r := &resolved{name: name, eps: eps}
	var skipped []string
	for _, ep := range eps {
		network := ""
		switch ep.Proto {
		case registry.ProtoTCP, registry.ProtoUnix:
			network = ep.Proto
		default:
			skipped = append(skipped, ep.Proto+" "+ep.Address)
			continue // a datagram socket carries no wire stream
		}
		codec, err := wire.Lookup(ep.Encoding)
		if err != nil {
			skipped = append(skipped, ep.Proto+" "+ep.Address+" ("+err.Error()+")")
			continue
		}
		key := poolKey{network: network, address: ep.Address, codec: codec.Name(), tls: ep.TLS}
		if ep.TLS {
			key.serverName, err = c.serverName(ep)
			if err != nil {
				skipped = append(skipped, ep.Proto+" "+ep.Address+" ("+err.Error()+")")
				continue
			}
		} else if c.opts.RequireTLS {
			skipped = append(skipped, ep.Proto+" "+ep.Address+" (plain text, and the client requires TLS)")
			continue
		}
		p, err := c.pool(key, codec)
		if err != nil {
			return nil, err
		}
		if ep.Node == c.opts.LocalNode {
			r.local++
		}
		r.targets = append(r.targets, &target{ep: ep, pool: p})
	}
	if len(r.targets) == 0 {
		return nil, fmt.Errorf("client: %q has no endpoint a client can use: %q", name, skipped)
	}
	return r, nil
}

// serverName is the name ep's certificate is verified against.
func (c *Client) serverName(ep registry.Endpoint) (string, error) {
	switch {
	case c.opts.ServerName != "":
		return c.opts.ServerName, nil
	case ep.ServerName != "":
		return ep.ServerName, nil
	case ep.Proto == registry.ProtoTCP:
		host, _, err := net.SplitHostPort(ep.Address)
		if err != nil {
			return "", fmt.Errorf("no server name to verify: %w", err)
		}
		return host, nil
	}
	return "", errors.New("no server name to verify its certificate against: set Options.ServerName")
}

// order returns the targets in the order a call tries them, appended to buf:
// the local node's, then the others', each rank in turn starting where the
// last call did not, and the endpoints marked down after all of them.
func (r *resolved) order(now time.Time, buf []*target) []*target {
	start := uint(r.rr.Add(1) - 1)
	var down []*target
	rank := func(ts []*target) {
		n := uint(len(ts))
		for i := range n {
			t := ts[(start+i)%n]
			if t.pool.isDown(now) {
				down = append(down, t)
				continue
			}
			buf = append(buf, t)
		}
	}
	if r.local > 0 {
		rank(r.targets[:r.local])
	}
	if r.local < len(r.targets) {
		rank(r.targets[r.local:])
	}
	return append(buf, down...)
}
