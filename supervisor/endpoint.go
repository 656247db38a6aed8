package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nsfd/nsfd/prefork"
	"golang.org/x/sys/unix"
)

// endpoint is one of the master's TCP servers, on metrics_addr or
// http_addr. Its socket lives as long as the master's process, across
// upgrades and re-executions (the hand-over's Extra names it): clients that
// connect meanwhile wait in its backlog, none is refused. Its server pauses
// before the exec (the requests under way answered) and serves again if
// the exec fails.
type endpoint struct {
	key  string            // "metrics" or "http": its hand-over keys are key_fd and key_addr
	addr string            // as nsfd.ini says it
	l    *prefork.Listener // the socket
	srv  *http.Server      // HTTPS if it has a TLSConfig
	cl   *connLimit        // srv's

	mu     sync.Mutex   // an upgrade pauses and resumes it off Run's goroutine
	nl     net.Listener // srv's, on a duplicate of l's fd; nil while paused
	closed bool
}

// listenEndpoint serves srv (with its cap cl) on addr for key: on adopted,
// the socket an upgrade handed over bound there, if any, else on a new one.
func (s *Supervisor) listenEndpoint(ctx context.Context, key, addr string, adopted *prefork.Listener, srv *http.Server, cl *connLimit) (*endpoint, error) {
	l := adopted
	if l == nil {
		var err error
		if l, err = prefork.Bind(ctx, prefork.ListenSpec{Network: "tcp", Address: addr, UID: -1, GID: -1}); err != nil {
			return nil, err
		}
	}
	e := &endpoint{key: key, addr: addr, l: l, srv: srv, cl: cl}
	if err := e.start(); err != nil {
		l.Close()
		return nil, err
	}
	return e, nil
}

// start serves on a listener of e's socket (a duplicate of its fd, which
// the server's poller owns), unless it serves already or is closed.
func (e *endpoint) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nl != nil || e.closed {
		return nil
	}
	nl, err := net.FileListener(e.l.File())
	if err != nil {
		return fmt.Errorf("%s: %w", e.l, err)
	}
	e.nl = nl
	e.srv.SetKeepAlivesEnabled(true)
	ln := e.cl.listener(nl)
	if e.srv.TLSConfig != nil {
		go e.srv.ServeTLS(ln, "", "")
	} else {
		go e.srv.Serve(ln)
	}
	return nil
}

// pause stops accepting, the socket kept (new connections wait in its
// backlog), and waits until ctx ends for the connections open to be
// answered and closed: keep-alives off, the idle ones closed at once. Not
// http.Server.Shutdown, which drops a request it reads once it has begun.
func (e *endpoint) pause(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nl == nil {
		return nil
	}
	e.nl.Close()
	e.nl = nil
	e.srv.SetKeepAlivesEnabled(false)
	return e.cl.drain(ctx, nil)
}

// close shuts the server down and closes the socket.
func (e *endpoint) close(ctx context.Context) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed, e.nl = true, nil
	e.srv.Shutdown(ctx)
	e.l.Close()
}

// adoptEndpoints takes the TCP endpoints' sockets an upgrade handed over,
// by endpoint ("metrics", "http"): each one bound at the address nsfd.ini
// still sets for it (or, with a port of its own, for the other endpoint:
// the two swapped). The others are closed first, so that a new address can
// take their port.
func (s *Supervisor) adoptEndpoints(ctx context.Context) map[string]*prefork.Listener {
	h := s.opts.Handover
	if h == nil {
		return nil
	}
	want := map[string]string{"metrics": s.master.MetricsAddr}
	if s.opts.UI != nil {
		want["http"] = s.master.HTTPAddr
	}
	adopted := map[string]*prefork.Listener{}
	for _, key := range endpointKeys {
		fd := h.extraFD(key)
		if fd < 0 {
			continue
		}
		addr := h.Extra[key+"_addr"]
		to := ""
		switch other := otherEndpoint(key); {
		case addr == "":
		case want[key] == addr:
			to = key
		case want[other] == addr && !anyPort(addr) && h.Extra[other+"_addr"] != addr:
			to = other
		}
		if to != "" && adopted[to] == nil {
			l, err := prefork.AdoptListener(ctx, prefork.ListenSpec{Network: "tcp", Address: addr, UID: -1, GID: -1}, fd)
			if err == nil {
				adopted[to] = l
				continue
			}
			s.log.Error("upgrade: cannot adopt socket; binding a new one", "addr", addr, "error", err)
		} else {
			s.log.Info("upgrade: socket no longer set in nsfd.ini; closed", "setting", key+"_addr", "addr", addr)
		}
		unix.Close(fd)
	}
	return adopted
}

// otherEndpoint is "http" for "metrics" and the other way round.
func otherEndpoint(key string) string {
	if key == "metrics" {
		return "http"
	}
	return "metrics"
}

// anyPort reports whether addr asks for any free port (port 0): two such
// addresses name two sockets.
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err != nil || port == "0"
}

// closeAdopted closes the sockets adoptEndpoints returned, on an error path
// (a Listener closes once: those in use by an endpoint are closed already).
func closeAdopted(adopted map[string]*prefork.Listener) {
	for _, l := range adopted {
		l.Close()
	}
}

// endpointKeys are the TCP endpoints' names in a hand-over's Extra.
var endpointKeys = []string{"metrics", "http"}

// handOverTCP names the sockets of c's TCP endpoints in h, for a binary
// that adopts them (featureTCPEndpoints).
func (c *control) handOverTCP(h *Handover) {
	for _, e := range c.endpoints() {
		h.Extra[e.key+"_fd"] = strconv.Itoa(e.l.FD())
		h.Extra[e.key+"_addr"] = e.addr
	}
}

// pause pauses the control socket's server and, with tcp, those of c's
// TCP endpoints before an exec, their sockets kept: new connections wait
// in the backlogs for the next binary. It waits at most 2 s for the
// requests under way to be answered, all but self's (the connection of
// the request that asked for the exec: the exec answers it by closing
// it). resume starts them again.
func (c *control) pause(ctx context.Context, self net.Conn, tcp bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.pauseSocket(ctx, self); err != nil {
		c.log.Warn("upgrade: control requests under way will be cut", "error", err)
	}
	if !tcp {
		return
	}
	for _, e := range c.endpoints() {
		if err := e.pause(ctx); err != nil {
			c.log.Warn("upgrade: requests under way will be cut", "addr", e.addr, "error", err)
		}
	}
}

// pauseSocket stops accepting on the control socket and waits until ctx
// ends for its connections but self to be answered and closed.
func (c *control) pauseSocket(ctx context.Context, self net.Conn) error {
	c.mu.Lock()
	nl := c.nl
	c.nl = nil
	c.mu.Unlock()
	if nl == nil {
		return nil
	}
	nl.Close()
	c.srv.SetKeepAlivesEnabled(false)
	return c.cl.drain(ctx, self)
}

// resume starts the servers pause paused, after a failed exec.
func (c *control) resume(tcp bool) {
	if err := c.resumeSocket(); err != nil {
		c.log.Error("after a failed upgrade: cannot serve the control socket again", "error", err)
	}
	if !tcp {
		return
	}
	for _, e := range c.endpoints() {
		if err := e.start(); err != nil {
			c.log.Error("after a failed upgrade: cannot serve again", "addr", e.addr, "error", err)
		}
	}
}

// resumeSocket serves the control socket again.
func (c *control) resumeSocket() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl != nil {
		return nil
	}
	nl, err := net.FileListener(c.l.File())
	if err != nil {
		return fmt.Errorf("%s: %w", c.l, err)
	}
	c.nl = nl
	c.srv.SetKeepAlivesEnabled(true)
	go c.srv.Serve(c.cl.listener(nl))
	return nil
}

// endpoints returns c's TCP endpoints that are set.
func (c *control) endpoints() []*endpoint {
	var es []*endpoint
	for _, e := range []*endpoint{c.metrics, c.http} {
		if e != nil {
			es = append(es, e)
		}
	}
	return es
}

// extraFDs returns the fds h's Extra names (the TCP endpoints').
func (h *Handover) extraFDs() []int {
	var fds []int
	for _, key := range endpointKeys {
		if fd := h.extraFD(key); fd >= 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// extraFD returns the fd Extra names for key ("metrics" or "http"), or -1.
func (h *Handover) extraFD(key string) int {
	v, ok := h.Extra[key+"_fd"]
	if !ok {
		return -1
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return -1
	}
	return fd
}
