package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/prefork"
)

// The control API: HTTP+JSON on a UNIX socket.
//
//	GET  /v1/status[?name=NAME]           Status
//	POST /v1/reload                        ReloadResult
//	POST /v1/daemons/{name}/start          {}
//	POST /v1/daemons/{name}/stop           {}
//	POST /v1/daemons/{name}/restart        {}
//	POST /v1/daemons/{name}/scale?n=+2     {"policy": PolicyOptions}   (n: +N, -N or N)
//	GET  /metrics                          Prometheus text format
//	     /ui/                              the web page (Options.UI), if set
//
// Errors are {"error": "..."} with 400 (bad request), 403 (caller not
// allowed), 404 (no such daemon), 409 (wrong state) or 500.
type control struct {
	l       *prefork.Listener
	srv     *http.Server
	cl      *connLimit // the control socket's connections
	metrics *endpoint  // metrics_addr, or nil
	http    *endpoint  // the web page on http_addr, or nil
	log     hclog.Logger

	mu sync.Mutex
	nl net.Listener // what srv accepts on (a copy of l's socket); nil while paused
}

type credsKey struct{}

// listenControl serves the control API on the control socket (and metrics
// on metrics_addr, if set). The socket is 0600, or 0660 with control_group
// as its group; every caller's uid is checked through peer credentials.
func (s *Supervisor) listenControl(ctx context.Context) (*control, error) {
	spec := prefork.ListenSpec{Network: "unix", Address: s.master.ControlSocket, Mode: 0o600, UID: -1, GID: -1}
	var gid = -1
	if g := s.master.ControlGroup; g != "" {
		n, err := lookupGroup(g)
		if err != nil {
			return nil, fmt.Errorf("control_group %q: %w", g, err)
		}
		gid, spec.Mode, spec.GID = n, 0o660, n
	}
	l, err := s.inheritedListener(ctx, spec, "control") // upgrade: adopt.go
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	nl, err := net.FileListener(l.File())
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	maxConns := s.maxConns()
	c := &control{l: l, log: s.log, nl: nl}
	api := s.apiHandler()
	c.srv, c.cl = newHTTPServer(s.controlHandler(api, gid), "control socket", maxConns, s.log)
	c.cl.maxStreams = streamCap(nofileLimit())
	connCtx := c.srv.ConnContext
	c.srv.ConnContext = func(ctx context.Context, conn net.Conn) context.Context {
		return context.WithValue(connCtx(ctx, conn), credsKey{}, peerCreds(conn))
	}
	go c.srv.Serve(c.cl.listener(nl))
	adopted := s.adoptEndpoints(ctx) // an upgrade's: endpoint.go
	if addr := s.master.MetricsAddr; addr != "" {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", s.metrics.handler())
		srv, mcl := newHTTPServer(mm, "metrics_addr", maxConns, s.log)
		srv.WriteTimeout = metricsWriteTimeout
		c.metrics, err = s.listenEndpoint(ctx, "metrics", addr, adopted["metrics"], srv, mcl)
		if err != nil {
			c.close()
			closeAdopted(adopted)
			return nil, fmt.Errorf("metrics_addr %s: %w", addr, err)
		}
		s.log.Info("metrics", "addr", c.metrics.l.Addr.String())
	}
	if c.http, err = s.listenHTTP(ctx, api, maxConns, adopted["http"]); err != nil {
		c.close()
		closeAdopted(adopted)
		return nil, err
	}
	s.log.Debug("control connections capped", "per_listener", maxConns, "nofile", nofileLimit())
	return c, nil
}

// apiHandler is the control API, without the check of its callers.
func (s *Supervisor) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("POST /v1/reload", s.handleReload)
	mux.HandleFunc("GET /v1/daemons/{name}/config", s.handleConfig)
	mux.HandleFunc("POST /v1/upgrade", s.handleUpgrade)
	mux.HandleFunc("POST /v1/daemons/{name}/{verb}", s.handleDaemon)
	mux.Handle("GET /metrics", s.metrics.handler())
	return jsonErrors(mux)
}

// controlHandler is the control socket's: api, and the web page if there
// is one, callers checked against control_group gid (-1: none).
func (s *Supervisor) controlHandler(api http.Handler, gid int) http.Handler {
	h := api
	if s.opts.UI != nil {
		h = uiHandler(s.opts.UI, api, false)
	}
	return s.authorize(h, gid)
}

// jsonErrors answers what mux has no route for (404, 405 with Allow, a
// redirect to a cleaned path) with the API's JSON error, as every other
// error of the API.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" && canonicalPath(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusOnly{header: http.Header{}}
		h.ServeHTTP(rec, r)
		for _, k := range []string{"Allow", "Location"} {
			if v := rec.header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		code := rec.code
		if code == 0 || code == http.StatusOK {
			code = http.StatusNotFound
		}
		writeError(w, code, fmt.Errorf("%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(code))))
	})
}

// canonicalPath reports whether ServeMux would serve p as it is rather
// than redirect to a cleaned form.
func canonicalPath(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// statusOnly is a ResponseWriter that keeps the status and the headers of
// an answer and drops its body.
type statusOnly struct {
	header http.Header
	code   int
}

func (s *statusOnly) Header() http.Header { return s.header }

func (s *statusOnly) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (s *statusOnly) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

func (c *control) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.srv.Shutdown(ctx)
	c.metrics.close(ctx)
	c.http.close(ctx)
	c.l.Close()
}

// peerCreds returns the caller's credentials, or nil.
func peerCreds(conn net.Conn) *peerCred {
	if w, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = w.NetConn()
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	var cred *peerCred
	raw.Control(func(fd uintptr) { cred = getPeerCred(int(fd)) })
	return cred
}

// authorize lets in root, the master's own uid, and members of control_group.
func (s *Supervisor) authorize(next http.Handler, gid int) http.Handler {
	self := uint32(os.Geteuid())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, _ := r.Context().Value(credsKey{}).(*peerCred)
		if cred == nil || !(cred.Uid == 0 || cred.Uid == self || (gid >= 0 && inGroup(cred, gid))) {
			who := "unknown"
			if cred != nil {
				who = "uid " + strconv.Itoa(int(cred.Uid))
			}
			s.log.Warn("control request refused", "caller", who, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, fmt.Errorf("%s may not control this master", who))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func inGroup(cred *peerCred, gid int) bool {
	if int(cred.Gid) == gid {
		return true
	}
	u, err := user.LookupId(strconv.Itoa(int(cred.Uid)))
	if err != nil {
		return false
	}
	gids, err := u.GroupIds()
	return err == nil && slices.Contains(gids, strconv.Itoa(gid))
}

// writeJSON writes v as the answer. Text from workers (STATUS=) is in it:
// what could act on a terminal is written as \u escapes, the same JSON value.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error": "encode answer"}`)
	}
	w.WriteHeader(code)
	w.Write(append(logging.JSONEscape(b), '\n'))
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func errorCode(err error) int {
	switch {
	case errors.Is(err, ErrNoDaemon):
		return http.StatusNotFound
	case errors.Is(err, ErrDaemonStopped):
		return http.StatusConflict
	case errors.Is(err, ErrBadScale):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (s *Supervisor) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Status(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, errorCode(err), err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Supervisor) handleReload(w http.ResponseWriter, r *http.Request) {
	res, err := s.Reload(r.Context())
	if err != nil {
		writeError(w, errorCode(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Supervisor) handleDaemon(w http.ResponseWriter, r *http.Request) {
	name, verb := r.PathValue("name"), r.PathValue("verb")
	var err error
	switch verb {
	case "start":
		err = s.Start(r.Context(), name)
	case "stop":
		err = s.Stop(r.Context(), name)
	case "restart":
		err = s.Restart(r.Context(), name)
	case "scale":
		n, abs, perr := ParseScale(r.URL.Query().Get("n"))
		if perr != nil {
			writeError(w, http.StatusBadRequest, perr)
			return
		}
		var ps []prefork.PolicyOptions
		ps, err = s.Scale(r.Context(), name, n, abs)
		if err == nil {
			s.log.Info("control: scale", "daemon", name, "n", r.URL.Query().Get("n"), "by", actor(r))
			writeJSON(w, http.StatusOK, map[string]any{"policy": ps[0]})
			return
		}
	default:
		writeError(w, http.StatusNotFound, fmt.Errorf("unknown verb %q", verb))
		return
	}
	if err != nil {
		writeError(w, errorCode(err), err)
		return
	}
	s.log.Info("control: "+verb, "daemon", name, "by", actor(r))
	writeJSON(w, http.StatusOK, map[string]any{})
}
