package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/nsfd/nsfd/wire"
)

// poolKey names an endpoint, the codec spoken to it, and whether it is
// spoken to over TLS, verified against serverName.
type poolKey struct {
	network, address, codec string
	tls                     bool
	serverName              string
}

// pool is one endpoint's idle connections and its health.
type pool struct {
	key   poolKey
	codec wire.Codec

	mu        sync.Mutex
	idle      []*pconn // most recently used last
	downUntil time.Time
	closed    bool // the client closed: connections are not kept
}

// pconn is a connection of a pool.
type pconn struct {
	conn      *wire.Conn
	raw       syscall.RawConn // for the liveness peek; nil if the conn has none
	peekFn    func(fd uintptr) bool
	peekErr   error
	buf       [1]byte
	idleSince time.Time
	reused    bool // it carried a call before the current one
}

// pool returns the pool of key, creating it.
func (c *Client) pool(key poolKey, codec wire.Codec) (*pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	p := c.pools[key]
	if p == nil {
		p = &pool{key: key, codec: codec}
		c.pools[key] = p
	}
	return p, nil
}

func (p *pool) isDown(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.downUntil)
}

// get returns an idle connection that is still open, or, if there is none
// or fresh is set, a new one. A dial failure marks the endpoint down.
func (p *pool) get(ctx context.Context, c *Client, fresh bool) (*pconn, error) {
	if !fresh {
		now := c.now()
		for {
			p.mu.Lock()
			n := len(p.idle)
			if n == 0 {
				p.mu.Unlock()
				break
			}
			pc := p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			if now.Sub(pc.idleSince) < c.opts.IdleTimeout && pc.alive() {
				pc.reused = true
				return pc, nil
			}
			pc.close()
		}
	}
	return p.dial(ctx, c)
}

// dial opens a new connection to the endpoint, bounded by the dial timeout;
// a failure marks the endpoint down for Options.DownFor, a success up.
func (p *pool) dial(ctx context.Context, c *Client) (*pconn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	nc, err := c.dialEndpoint(dctx, p.key)
	if err != nil {
		if ctx.Err() == nil {
			p.markDown(c)
		}
		return nil, fmt.Errorf("client: dial %s %s: %w", p.key.network, p.key.address, err)
	}
	p.mu.Lock()
	p.downUntil = time.Time{}
	p.mu.Unlock()
	pc := &pconn{conn: wire.NewConn(nc, p.codec, c.opts.MaxFrame)}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw = raw
			pc.peekFn = pc.peek
		}
	}
	return pc, nil
}

// dialEndpoint connects to key's endpoint, with Options.Dial, sets its
// AckTimeout, and does the TLS handshake if it wants TLS.
func (c *Client) dialEndpoint(ctx context.Context, key poolKey) (net.Conn, error) {
	dial := c.opts.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, key.network, key.address)
	if err != nil {
		return nil, err
	}
	if key.network == "tcp" && c.opts.AckTimeout > 0 {
		if err := setAckTimeout(nc, c.opts.AckTimeout); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if !key.tls {
		return nc, nil
	}
	cfg := &tls.Config{}
	if c.opts.TLS != nil {
		cfg = c.opts.TLS.Clone()
	}
	cfg.ServerName = key.serverName
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err // "tls: failed to verify certificate: ..."
	}
	return tc, nil
}

// dropIdle closes the idle connections, which a cut-off peer will never
// answer either.
func (p *pool) dropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
}

// markDown makes calls skip the endpoint for Options.DownFor.
func (p *pool) markDown(c *Client) {
	p.mu.Lock()
	p.downUntil = c.now().Add(c.opts.DownFor)
	p.mu.Unlock()
}

// put returns pc to the pool after a call, or closes it if it is unusable,
// the pool is full or the client closed.
func (p *pool) put(c *Client, pc *pconn) {
	if pc.conn.Err() != nil || c.opts.MaxIdle < 0 {
		pc.close()
		return
	}
	pc.idleSince = c.now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= c.opts.MaxIdle {
		p.mu.Unlock()
		pc.close()
		return
	}
	p.idle = append(p.idle, pc)
	p.mu.Unlock()
}

// close closes the idle connections, and those put back later.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
}

func (pc *pconn) close() { pc.conn.Close() }

// alive reports whether an idle connection is still open: the server sends
// nothing unasked, so a pending byte or an end of file means it is broken or
// closed.
func (pc *pconn) alive() bool {
	if pc.raw == nil {
		return pc.conn.Err() == nil
	}
	pc.peekErr = nil
	if err := pc.raw.Read(pc.peekFn); err != nil {
		return false
	}
	return pc.peekErr == nil
}
