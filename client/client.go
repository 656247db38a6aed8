package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/remote"
	"github.com/nsfd/nsfd/wire"
	"github.com/nsfd/nsfd/worker"
)

// Defaults of Options.
const (
	// DefaultCacheTTL is how long a name's endpoints are used before the
	// registry is asked again.
	DefaultCacheTTL = time.Second
	// DefaultDownFor is how long an endpoint that could not be dialled is
	// skipped.
	DefaultDownFor = 5 * time.Second
	// DefaultMaxIdle is how many idle connections are kept per endpoint.
	DefaultMaxIdle = 16
	// DefaultIdleTimeout is how long an idle connection is kept.
	DefaultIdleTimeout = time.Minute
	// DefaultDialTimeout bounds each dial, within the call's context.
	DefaultDialTimeout = 2 * time.Second
	// DefaultQueue is the name of the queue daemon.
	DefaultQueue = "queue"
)

// Options configure a Client. The zero value gives the defaults.
type Options struct {
	// LocalNode is this host's node name: its endpoints are tried first.
	// "" means $NSFD_NODE (which the master sets for its workers), else
	// the host name, as nsfd.ini's node_name defaults to.
	LocalNode string
	// MaxAge is the oldest heartbeat a daemon may have to be used (see
	// registry.ResolveOptions); 0 means registry.DefaultMaxAge. Set it to
	// three `[registry] heartbeat`s.
	MaxAge time.Duration
	// CacheTTL is how long a name's endpoints are used before the
	// registry is asked again, while no watch of the registry's changes
	// is up (see NoWatch); 0 means DefaultCacheTTL, < 0 no cache (and no
	// watch).
	CacheTTL time.Duration
	// NoWatch: do not watch the registry for changes (registry.Watcher),
	// which costs a connection of its own to PostgreSQL, or a stream on
	// the master's resolver socket. Without a watch, a cached resolution
	// is used for CacheTTL; with one, until the registry announces a
	// change of its name, and for at most MaxAge.
	NoWatch bool
	// DownFor is how long an endpoint that could not be dialled is skipped;
	// 0 means DefaultDownFor.
	DownFor time.Duration
	// MaxIdle is how many idle connections are kept per endpoint; 0 means
	// DefaultMaxIdle, < 0 none (a connection per call).
	MaxIdle int
	// IdleTimeout is how long an idle connection is kept; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// DialTimeout bounds each dial; 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxFrame is the largest frame sent or accepted; 0 means
	// wire.DefaultMaxFrame.
	MaxFrame int
	// Queue is the name of the queue daemon that holds async results; ""
	// means DefaultQueue.
	Queue string
	// AckTimeout bounds how long a request sent on a TCP connection may
	// stay unacknowledged by the peer's kernel before the connection fails
	// (Linux's TCP_USER_TIMEOUT): a node cut off the network fails the
	// calls sent to it after this long, not after TCP's minutes of
	// retransmissions, and is then skipped for DownFor. A daemon that is
	// only slow is not affected: its kernel acknowledges the request at
	// once. 0 means DefaultAckTimeout; < 0 leaves the system's default.
	AckTimeout time.Duration

	// Dial opens connections to endpoints; nil means a net.Dialer. It is
	// bounded by DialTimeout, and the TLS handshake, for an endpoint that
	// wants TLS, happens on what it returns.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// TLS is the configuration for the endpoints the registry says want
	// TLS: its RootCAs verify the daemons' certificates (nil: the system's
	// roots), its Certificates are the client's, for daemons that want
	// mutual TLS (tls_client_ca). Each connection uses a clone, with
	// ServerName set as below. An endpoint that does not want TLS is
	// spoken to in plain text unless RequireTLS is set.
	TLS *tls.Config
	// ServerName is the name every daemon's certificate is verified
	// against; "" means the endpoint's own, as its master registered it
	// (the first DNS name of its certificate), else the host of its
	// address (an IP address, which the certificate must then list).
	ServerName string
	// RequireTLS skips the endpoints that do not want TLS, so that a
	// token is never sent in plain text.
	RequireTLS bool
	// Credential is the "USER:TOKEN" sent with every request whose User
	// and Pass are both empty, for daemons that check tokens (see
	// wire.Tokens); "" sends none. Load it from a file or the environment
	// (ReadCredential, FromEnv), never from a command line.
	Credential string
}

// DefaultAckTimeout is Options.AckTimeout's default.
const DefaultAckTimeout = 2 * time.Second

// withDefaults returns o with its zero fields set.
func (o Options) withDefaults() Options {
	if o.LocalNode == "" {
		o.LocalNode = os.Getenv(worker.EnvNode)
	}
	if o.LocalNode == "" {
		o.LocalNode, _ = os.Hostname()
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.DownFor <= 0 {
		o.DownFor = DefaultDownFor
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = DefaultMaxIdle
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.Queue == "" {
		o.Queue = DefaultQueue
	}
	return o
}

// ErrClosed is returned (wrapped) by the calls of a closed Client.
var ErrClosed = errors.New("client: closed")

// Resolver is what a Client needs of a registry: the endpoints of a name,
// each with the encoding its daemon speaks, as registry.Registry's Resolve
// gives them (its errors wrapping registry.ErrNotFound or registry.ErrStale
// when the name resolves to nothing). A registry.Registry is one; so is the
// master's resolver socket (registry/remote), which FromEnv uses in a
// worker, so that a worker links no database driver.
type Resolver interface {
	Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error)
}

// Client calls daemons by name. Its methods are safe for concurrent use.
type Client struct {
	reg  Resolver
	own  bool // Close closes reg
	opts Options
	now  func() time.Time // the clock; tests set it

	mu     sync.RWMutex
	names  map[string]*nameEntry
	pools  map[poolKey]*pool
	closed bool

	watch watcher // registry change notifications (watch.go)

	// unreachable is when (c.now, Unix nanoseconds) the registry last
	// could not be reached, by a lookup or by the watch; 0 if never.
	unreachable atomic.Int64
	// back is when the registry first answered after it was last
	// unreachable (a stale answer counts); 0 if it never was.
	back atomic.Int64
}

// New returns a Client that resolves names through reg, a registry.Registry
// say. The Client does not own reg: close it after the Client.
func New(reg Resolver, o Options) *Client {
	return &Client{
		reg:   reg,
		opts:  o.withDefaults(),
		now:   time.Now,
		names: map[string]*nameEntry{},
		pools: map[poolKey]*pool{},
	}
}

// RegistryFromEnv opens the registry named by $NSFD_REGISTRY_TYPE (default
// sqlite) and $NSFD_REGISTRY_DSN.
func RegistryFromEnv(ctx context.Context) (registry.Registry, error) {
	typ, dsn := os.Getenv(worker.EnvRegistryType), os.Getenv(worker.EnvRegistryDSN)
	if typ == "" {
		typ = registry.TypeSQLite
	}
	if dsn == "" {
		return nil, fmt.Errorf("client: %s is not set: which registry?", worker.EnvRegistryDSN)
	}
	reg, err := registry.Open(ctx, typ, dsn)
	if err != nil {
		return nil, fmt.Errorf("client: open registry %s %s: %w", typ, registry.Redact(dsn), err)
	}
	return reg, nil
}

// ResolverFromEnv returns the resolver the environment names: the master's
// resolver socket, $NSFD_RESOLVER, which the master passes to its workers;
// else the registry RegistryFromEnv opens, which takes the registry's
// driver linked into the program (see registry.Open). Close it when done
// (it is an io.Closer).
func ResolverFromEnv(ctx context.Context) (Resolver, error) {
	if path := os.Getenv(worker.EnvResolver); path != "" {
		return remote.Dial(path), nil
	}
	return RegistryFromEnv(ctx)
}

// FromEnv returns a Client on the resolver ResolverFromEnv finds, with
// $NSFD_REGISTRY_MAX_AGE and $NSFD_NODE as options, and, for daemons that
// want TLS or tokens, $NSFD_CA, $NSFD_CLIENT_CERT, $NSFD_CLIENT_KEY,
// $NSFD_SERVER_NAME and the credential of $NSFD_TOKEN_FILE or $NSFD_TOKEN
// (see package worker's names); fields of o that are set take precedence.
// The Client owns the resolver: Close closes it.
func FromEnv(ctx context.Context, o Options) (*Client, error) {
	o, err := SecurityFromEnv(o)
	if err != nil {
		return nil, err
	}
	if o.MaxAge == 0 {
		if s := os.Getenv(worker.EnvRegistryMaxAge); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("client: %s: %w", worker.EnvRegistryMaxAge, err)
			}
			o.MaxAge = d
		}
	}
	reg, err := ResolverFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	c := New(reg, o)
	c.own = true
	return c, nil
}

// Options returns the client's options, with the defaults filled in.
func (c *Client) Options() Options { return c.opts }

// Close closes the idle connections (connections in use close when their
// call returns) and, for a Client from FromEnv, its resolver. Later calls
// fail with ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	pools := c.pools
	c.pools = map[poolKey]*pool{}
	c.mu.Unlock()
	c.stopWatch()
	for _, p := range pools {
		p.close()
	}
	if cl, ok := c.reg.(io.Closer); ok && c.own {
		return cl.Close()
	}
	return nil
}

// Call sends req to the daemon called name and returns its response. If the
// daemon answers asynchronously (wire.CodePending with a job id, see
// Accepted), Call waits for the result in the spool and returns it; use
// CallAsync to wait later, or not at all.
//
// As with wire.Conn.Call, the error is about the call: a response with an
// error code is returned with a nil error (its Err method gives the code as
// an error). An error means no endpoint could be reached, the connection
// failed after the request was sent, or ctx ended; it wraps ctx.Err() then,
// registry.ErrNotFound or registry.ErrStale when the name resolves to
// nothing, and ErrClosed after Close.
func (c *Client) Call(ctx context.Context, name string, req *wire.Request) (*wire.Response, error) {
	resp, err := c.call(ctx, name, req)
	if err != nil {
		return nil, err
	}
	if id, ok := PendingID(resp); ok {
		return c.Wait(ctx, id)
	}
	return resp, nil
}

// call is one request and its immediate response: it walks the name's
// endpoints in order until one answers.
func (c *Client) call(ctx context.Context, name string, req *wire.Request) (*wire.Response, error) {
	ts, err := c.targets(ctx, name)
	if err != nil {
		return nil, err
	}
	req = c.withCredential(req)
	var (
		lastErr error
		retried bool // the request was sent again once
		order   = ts.order(c.now(), make([]*target, 0, 8))
	)
	for i := 0; i < len(order); i++ {
		t := order[i]
		pc, err := t.pool.get(ctx, c, retried)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fmt.Errorf("client: call %s %q: %w", name, req.Command, errors.Join(err, ctxErr))
			}
			if errors.Is(err, ErrClosed) {
				return nil, err
			}
			lastErr = err
			continue // the next endpoint
		}
		resp, err := pc.conn.Call(ctx, req)
		if err == nil {
			t.pool.put(c, pc)
			return resp, nil
		}
		pc.close()
		err = fmt.Errorf("client: call %s at %s: %w", name, t.pool.key.address, err)
		switch {
		case errors.Is(err, syscall.ETIMEDOUT):
			// The peer's kernel stopped acknowledging (AckTimeout): the
			// node is cut off, and so are its other connections. The
			// request may have run, so it is not sent again.
			t.pool.markDown(c)
			t.pool.dropIdle()
			return nil, err
		case ctx.Err() != nil || !unsent(err):
			return nil, err
		case !pc.reused:
			// A new connection, dropped before it was answered: the
			// endpoint is failing (its worker died?). The request may
			// have run, so it is not sent again; the next calls go
			// elsewhere for a while.
			t.pool.markDown(c)
			return nil, err
		case retried:
			return nil, err
		}
		// The server had closed the idle connection as the request went:
		// once more, on a new connection, to the next endpoint if there
		// is one (this one may be going away), else to this one.
		retried = true
		if i == len(order)-1 {
			i--
		}
	}
	return nil, fmt.Errorf("client: call %s %q: no endpoint answered: %w", name, req.Command, lastErr)
}

// unsent reports whether err, from a reused connection, shows the server had
// closed it before any of the response came: an end of file before the first
// byte, a reset or a broken pipe.
func unsent(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Dial returns a new connection to the daemon called name, not from the
// pool, speaking its encoding: the endpoints are tried as Call tries them.
// The caller owns the connection and closes it.
func (c *Client) Dial(ctx context.Context, name string) (*wire.Conn, error) {
	ts, err := c.targets(ctx, name)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, t := range ts.order(c.now(), nil) {
		pc, err := t.pool.dial(ctx, c)
		if err == nil {
			return pc.conn, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("client: dial %s: %w", name, errors.Join(err, ctxErr))
		}
		lastErr = err
	}
	return nil, fmt.Errorf("client: dial %s: no endpoint answered: %w", name, lastErr)
}
