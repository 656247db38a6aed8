package supervisor

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nsfd/nsfd/prefork"
)

// UI is a web page over the control API (package web): it is served under
// /ui/ on the control socket, whose caller check lets its callers in, and on
// http_addr, where it authenticates them itself.
type UI interface {
	// Handler serves the page under /ui/ through api, the control API
	// with no caller check of its own. remote is true on http_addr.
	Handler(api http.Handler, remote bool) http.Handler
}

// uiStreamHeader is what a request for a stream (server-sent events) of
// the page asks for in its Accept header.
const uiStreamHeader = "text/event-stream"

type actorKey struct{}

// WithActor returns ctx naming who makes a control request ("web:ann"),
// for the log of what the control API does on its behalf.
func WithActor(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, actorKey{}, who)
}

// ActorOf returns who WithActor named in ctx, or "".
func ActorOf(ctx context.Context) string {
	who, _ := ctx.Value(actorKey{}).(string)
	return who
}

// actor names who made r: the actor its context names and the peer of the
// control socket ("web (uid 1000)", "uid 1000", "web:ann").
func actor(r *http.Request) string {
	who := ActorOf(r.Context())
	if cred, ok := r.Context().Value(credsKey{}).(*peerCred); ok && cred != nil {
		uid := "uid " + strconv.Itoa(int(cred.Uid))
		if who == "" {
			return uid
		}
		return who + " (" + uid + ")"
	}
	if who == "" {
		return "unknown"
	}
	return who
}

// uiHandler mounts the UI beside the API: /ui/ is the page, every other
// path the API. A stream of the page (server-sent events) leaves the
// connection cap for the cap on streams, as the resolver socket's watches
// do, so that open pages never crowd out the CLI.
func uiHandler(ui UI, api http.Handler, remote bool) http.Handler {
	page := ui.Handler(api, remote)
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == uiStreamHeader {
			if c, ok := r.Context().Value(connKey{}).(*limitedConn); ok && !c.l.stream(c) {
				writeError(w, http.StatusServiceUnavailable, errTooManyStreams)
				return
			}
		}
		page.ServeHTTP(w, r)
	}))
	if remote {
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusSeeOther))
		mux.Handle("/", http.NotFoundHandler())
	} else {
		mux.Handle("/", api)
	}
	return mux
}

// listenHTTP serves the UI on http_addr (HTTPS with http_tls_cert), on
// adopted if an upgrade handed its socket over, or returns nil when it is
// not set.
func (s *Supervisor) listenHTTP(ctx context.Context, api http.Handler, maxConns int, adopted *prefork.Listener) (*endpoint, error) {
	addr := s.master.HTTPAddr
	if addr == "" || s.opts.UI == nil {
		return nil, nil
	}
	var tlsConfig *tls.Config
	scheme := "http"
	if s.master.HTTPTLSCert != "" {
		pair, err := tls.LoadX509KeyPair(s.master.HTTPTLSCert, s.master.HTTPTLSKey)
		if err != nil {
			adopted.Close()
			return nil, fmt.Errorf("http_tls_cert: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	srv, cl := newHTTPServer(uiHandler(s.opts.UI, api, true), "http_addr", maxConns, s.log)
	cl.maxStreams = streamCap(nofileLimit())
	srv.TLSConfig = tlsConfig
	e, err := s.listenEndpoint(ctx, "http", addr, adopted, srv, cl)
	if err != nil {
		return nil, fmt.Errorf("http_addr %s: %w", addr, err)
	}
	s.log.Info("web page", "url", scheme+"://"+e.l.Addr.String()+"/ui/")
	return e, nil
}
