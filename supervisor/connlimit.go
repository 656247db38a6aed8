package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// The master's own HTTP servers (the control socket, the resolver socket
// and metrics_addr) are open to clients that may not behave: any local user
// can open connections to metrics_addr or the resolver socket and leave
// them idle, or trickle a request header byte by byte. Each connection
// costs the master a descriptor, and a master out of descriptors cannot
// read etc/, bind a listener or start a worker. So each server has
//
//   - timeouts: a request header must arrive within httpReadHeaderTimeout,
//     a whole request within httpReadTimeout, its answer must be read
//     within httpWriteTimeout, and a keep-alive connection idle for
//     httpIdleTimeout is closed;
//   - a cap on its connections (connLimit): at the cap, a new connection
//     closes the one idle the longest (no request being answered on it;
//     one still sending its header counts as idle), or, when every one is
//     answering a request, is itself closed at once. An operator's `nsfd
//     status` therefore never waits behind idle or slow clients;
//   - requests bounded: headers at most httpMaxHeaderBytes, bodies (no
//     handler reads one) at most httpMaxBodyBytes.
//
// The caps leave the rest of the descriptors to the master's own work:
// the Go runtime raises the soft RLIMIT_NOFILE to (one below) the hard
// limit at start, and gives workers the original back; connCap keeps
// fdReserve of that, and half the rest, for the master whatever the
// clients do.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpIdleTimeout       = 30 * time.Second
	// httpWriteTimeout bounds a request from its start to the last byte of
	// its answer: a client that does not read its answer holds a connection
	// no longer. Control requests may wait for a drain; the CLI gives up
	// after 2 minutes, the master a little later. A scrape is quick.
	httpWriteTimeout    = 3 * time.Minute
	metricsWriteTimeout = 30 * time.Second
	httpMaxHeaderBytes  = 64 << 10
	httpMaxBodyBytes    = 64 << 10

	// maxConnsPerListener is the cap of each of the master's HTTP
	// listeners, when the descriptor limit allows it.
	maxConnsPerListener = 64
	// fdReserve is how many descriptors the caps leave to the master's
	// own work (etc/ files, listeners, workers' pipes and pidfds, the
	// registry, the log) beyond what its listeners' clients may hold.
	fdReserve = 128
)

// connCap is the connection cap of each of the master's n HTTP listeners:
// maxConnsPerListener, less when the descriptor limit is low, so that all
// of them together leave fdReserve descriptors and half the rest to the
// master; at least 4.
func connCap(nofile uint64, n int) int {
	if n < 1 {
		n = 1
	}
	avail := 0
	if nofile > fdReserve {
		avail = int(min(nofile-fdReserve, 1<<20)) / 2 / n
	}
	return max(4, min(maxConnsPerListener, avail))
}

// maxConns is the connection cap of each of the master's HTTP listeners:
// the control socket, the resolver socket and metrics_addr if set.
func (s *Supervisor) maxConns() int {
	n := 2
	if s.master.MetricsAddr != "" {
		n++
	}
	return connCap(nofileLimit(), n)
}

// nofileLimit returns the soft RLIMIT_NOFILE (which Go has raised to about
// the hard limit at start), or a conservative 1024 if it cannot be read.
func nofileLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return uint64(rl.Cur) // int64 on FreeBSD
}

// newHTTPServer returns an http.Server for h with the master's timeouts and
// bounds, and the connLimit its listener must be wrapped with.
func newHTTPServer(h http.Handler, name string, maxConns int, log hclog.Logger) (*http.Server, *connLimit) {
	cl := &connLimit{name: name, max: maxConns, log: log, conns: make(map[*limitedConn]*connUse)}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > httpMaxBodyBytes {
				// Refused before anything reads it; the server then closes
				// the connection rather than drain the rest.
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes: the limit is %d", r.ContentLength, httpMaxBodyBytes))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, httpMaxBodyBytes)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ConnState:         cl.track,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ErrorLog: log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return srv, cl
}

// connLimit caps the live connections of a listener; see above.
type connLimit struct {
	name string
	max  int
	log  hclog.Logger

	// maxStreams caps the connections a handler turned into streams
	// (stream); 0: none may be.
	maxStreams int

	mu      sync.Mutex
	conns   map[*limitedConn]*connUse
	streams map[*limitedConn]bool // out of conns: neither counted nor evicted
	evicted int                   // connections closed to make room, since the last log line
	refused int                   // new connections closed because all were busy, same
	logged  time.Time             // when the last log line about them was written
}

// connUse is what connLimit knows of one connection.
type connUse struct {
	busy      bool      // a request is being answered
	idleSince time.Time // when it last became idle (accepted, or answered)
}

// limitedConn is a connection connLimit counts; NetConn returns the
// connection it wraps (for peer credentials).
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

// NetConn returns the underlying connection.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and stops counting it.
func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.forget(c) })
	return c.Conn.Close()
}

// listener returns ln wrapped so that it applies the cap.
func (l *connLimit) listener(ln net.Listener) net.Listener {
	return limitListener{l: l, ln: ln}
}

type limitListener struct {
	l  *connLimit
	ln net.Listener
}

func (ll limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.ln.Accept()
		if err != nil {
			return nil, err
		}
		if lc := ll.l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

func (ll limitListener) Close() error   { return ll.ln.Close() }
func (ll limitListener) Addr() net.Addr { return ll.ln.Addr() }

// admit counts c, making room if the cap is reached; it returns nil if c
// was refused (closed).
func (l *connLimit) admit(c net.Conn) *limitedConn {
	now := time.Now()
	l.mu.Lock()
	var victim *limitedConn
	if len(l.conns) >= l.max {
		var oldest time.Time
		for lc, u := range l.conns {
			if !u.busy && (victim == nil || u.idleSince.Before(oldest)) {
				victim, oldest = lc, u.idleSince
			}
		}
		if victim == nil {
			l.refused++
			l.report(now)
			l.mu.Unlock()
			c.Close()
			return nil
		}
		delete(l.conns, victim)
		l.evicted++
		l.report(now)
	}
	lc := &limitedConn{Conn: c, l: l}
	l.conns[lc] = &connUse{idleSince: now}
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close() // its server goroutine sees the error and ends
	}
	return lc
}

// report logs evictions and refusals, at most once a minute. l.mu is held.
func (l *connLimit) report(now time.Time) {
	if now.Sub(l.logged) < time.Minute {
		return
	}
	l.log.Warn("connection limit reached; closing idle connections to make room",
		"listener", l.name, "limit", l.max, "closed_idle", l.evicted, "refused", l.refused)
	l.logged, l.evicted, l.refused = now, 0, 0
}

// track is the server's ConnState hook.
func (l *connLimit) track(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateHijacked || st == http.StateClosed {
		delete(l.streams, lc)
	}
	u := l.conns[lc]
	if u == nil {
		return
	}
	switch st {
	case http.StateActive:
		u.busy = true
	case http.StateIdle:
		u.busy, u.idleSince = false, time.Now()
	case http.StateHijacked, http.StateClosed:
		delete(l.conns, lc)
	}
}

// drain waits until every connection counted but except (nil: none) is
// closed, or ctx ends: with keep-alives off and the listener closed, its
// server answers the request under way on each, or the one it is about to
// read, and closes it.
func (l *connLimit) drain(ctx context.Context, except net.Conn) error {
	for tick := time.Millisecond; ; tick = min(2*tick, 50*time.Millisecond) {
		l.mu.Lock()
		n := len(l.conns)
		if lc, ok := except.(*limitedConn); ok && l.conns[lc] != nil {
			n--
		}
		l.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d connections still open on %s: %w", n, l.name, ctx.Err())
		case <-time.After(tick):
		}
	}
}

func (l *connLimit) forget(c *limitedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.streams, c)
	l.mu.Unlock()
}

// stream moves c, whose request will hold it for long (a watch), out of
// the connection cap into the cap on streams; false if that is reached.
func (l *connLimit) stream(c *limitedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.streams) >= l.maxStreams {
		return false
	}
	if l.streams == nil {
		l.streams = make(map[*limitedConn]bool)
	}
	delete(l.conns, c)
	l.streams[c] = true
	return true
}

// connKey is the request context's key of its connection (a *limitedConn).
type connKey struct{}

// streamCap is the cap on a listener's long-lived streams: a quarter of
// what the descriptor limit leaves beyond fdReserve, so that one per
// worker fits any real pool and a flood still leaves the master most of
// its descriptors; at least 4.
func streamCap(nofile uint64) int {
	if nofile <= fdReserve {
		return 4
	}
	return max(4, int(min(nofile-fdReserve, 1<<20))/4)
}

// live returns how many connections are counted, and how many of them
// are answering a request.
func (l *connLimit) live() (n, busy int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range l.conns {
		if u.busy {
			busy++
		}
	}
	return len(l.conns), busy
}
