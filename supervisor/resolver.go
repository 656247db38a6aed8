package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
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
	// resolverWriteTimeout bounds a request to the last byte of its
	// answer: an answer is small and quick.
	resolverWriteTimeout = 10 * time.Second
)

// resolver is the resolver socket's server.
type resolver struct {
	path string
	l    *prefork.Listener
	srv  *http.Server
}

// listenResolver serves the registrar's registry on RUN_DIR/resolve.sock.
func (s *Supervisor) listenResolver(ctx context.Context) (*resolver, error) {
	path := filepath.Join(s.master.RunDir, resolverSocket)
	l, err := s.inheritedListener(ctx, prefork.ListenSpec{Network: "unix", Address: path, Mode: resolverMode, UID: -1, GID: -1}, "resolver")
	if err != nil {
		return nil, fmt.Errorf("resolver socket: %w", err)
	}
	nl, err := net.FileListener(l.File())
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("resolver socket: %w", err)
	}
	// Any local user may connect: the connections are capped, the longest
	// idle closed to make room (connlimit.go), so none can crowd out the
	// workers.
	r := &resolver{path: path, l: l}
	var cl *connLimit
	r.srv, cl = newHTTPServer(resolverHandler(s.reg, s.changes), "resolver socket", s.maxConns(), s.log)
	r.srv.WriteTimeout = resolverWriteTimeout
	cl.maxStreams = streamCap(nofileLimit())
	go r.srv.Serve(cl.listener(nl))
	return r, nil
}

func (r *resolver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
	r.l.Close()
}

// resolverHandler serves the registrar's Resolve and the hub's stream of
// changes. A stream holds its connection for as long as the worker runs:
// it leaves the connection cap for the cap on streams (connLimit.stream),
// so watchers never crowd out a resolve, and a flood of them is bounded
// too.
func resolverHandler(reg *registrar, hub *changeHub) http.Handler {
	h := remote.Handler(resolverHub{reg, hub})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == remote.PathWatch {
			if c, ok := req.Context().Value(connKey{}).(*limitedConn); ok && !c.l.stream(c) {
				writeError(w, http.StatusServiceUnavailable, errTooManyStreams)
				return
			}
		}
		h.ServeHTTP(w, req)
	})
}

// errTooManyStreams answers a watch beyond the cap on streams.
var errTooManyStreams = errors.New("too many watch streams; resolve without one")

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

// resolve is Resolve on the registry the registrar holds. This master
// answers, so it is alive: its own daemons are resolved even when its
// heartbeat is late (a registry write slowed by load), never "stale" to
// its own workers.
func (r *registrar) resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	reg := r.live.Load()
	if reg == nil {
		return nil, errNoRegistry
	}
	o.AliveNode, o.AlivePID = r.node, r.pid
	return reg.Resolve(ctx, name, o)
}
