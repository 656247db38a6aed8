package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/remote"
)

// The resolver socket: the master serves its registry's Resolve, read-only,
// to its own workers (registry/remote), on RUN_DIR/resolve.sock, and passes
// its path in NSFD_RESOLVER, so that a framework daemon resolves names
// without a database driver or access to the database. The answers come
// from the registry handle the registrar holds, so they follow it when it
// reconnects or reopens a deleted SQLite file.
const (
	resolverSocket = "resolve.sock"
	// resolverMode: any local user may connect (a worker runs as its
	// daemon's user); run_dir's own mode says who can reach it. It tells
	// what `nsfd resolve` tells, and nothing can be written through it.
	resolverMode = 0o666
	// resolverMaxConns bounds the connections served at once; more wait in
	// the socket's backlog.
	resolverMaxConns = 64
)

// resolver is the resolver socket's server.
type resolver struct {
	path string
	l    *prefork.Listener
	srv  *http.Server
}

// listenResolver serves the registrar's registry on RUN_DIR/resolve.sock.
func (s *Supervisor) listenResolver() (*resolver, error) {
	path := filepath.Join(s.master.RunDir, resolverSocket)
	l, err := prefork.Bind(context.Background(), prefork.ListenSpec{Network: "unix", Address: path, Mode: resolverMode, UID: -1, GID: -1})
	if err != nil {
		return nil, fmt.Errorf("resolver socket: %w", err)
	}
	nl, err := net.FileListener(l.File())
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("resolver socket: %w", err)
	}
	r := &resolver{path: path, l: l}
	r.srv = &http.Server{
		Handler:           resolverHandler(s.reg, s.changes),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	go r.srv.Serve(newLimitListener(nl, resolverMaxConns))
	return r, nil
}

func (r *resolver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
	r.l.Close()
}

// resolverHandler serves the registrar's Resolve and the hub's stream of
// changes. A stream holds its connection for as long as the worker runs,
// so it gives back its slot of resolverMaxConns: watchers never crowd out
// a resolve.
func resolverHandler(reg *registrar, hub *changeHub) http.Handler {
	h := remote.Handler(resolverHub{reg, hub})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == remote.PathWatch {
			if c, ok := req.Context().Value(connKey{}).(*limitConn); ok {
				c.once.Do(c.release)
			}
		}
		h.ServeHTTP(w, req)
	})
}

// connKey is the request context's key of its *limitConn.
type connKey struct{}

// resolverHub is what the resolver socket serves: Resolve and Watch.
type resolverHub struct {
	reg *registrar
	hub *changeHub
}

func (r resolverHub) Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	return r.reg.resolve(ctx, name, o)
}

func (r resolverHub) Watch(ctx context.Context, ready func(), changed func(string)) error {
	return r.hub.Watch(ctx, ready, changed)
}

// errNoRegistry is the resolver's answer while the registrar has no
// registry open.
var errNoRegistry = errors.New("the master has no registry open (is it unreachable?)")

// resolve is Resolve on the registry the registrar holds.
func (r *registrar) resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	reg := r.live.Load()
	if reg == nil {
		return nil, errNoRegistry
	}
	return reg.Resolve(ctx, name, o)
}

// limitListener accepts at most n connections at once: Accept waits for
// one of them to close.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// limitConn gives its slot back once, when it is closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
