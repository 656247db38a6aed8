package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/supervisor"
	"github.com/nsfd/nsfd/wire"
)

//go:embed assets
var assets embed.FS

// Options are what the page needs beyond the control API.
type Options struct {
	// Users checks the callers on http_addr (http_users); nil: no
	// authentication, which nsfd.ini allows on a loopback address only.
	Users *wire.Tokens
	// LogFile is the central log file; "" when the log goes to syslog or
	// stderr, and the page shows no log lines.
	LogFile string
	// Fleet returns the nodes of the fleet (a PostgreSQL registry); nil
	// when there is no fleet to show.
	Fleet func(ctx context.Context) ([]FleetNode, error)
	// Log receives what the page refuses; nil: discarded.
	Log hclog.Logger
}

// FleetNode is one node of the fleet page.
type FleetNode struct {
	Node         string
	Stale        bool          // no heartbeat within 3 beats
	HeartbeatAge time.Duration // age of its freshest heartbeat
	Daemons      []FleetDaemon
}

// FleetDaemon is one daemon of a FleetNode.
type FleetDaemon struct {
	Name      string
	State     string
	Stale     bool
	Endpoints []string // "tcp 198.18.0.2:7001"
}

// Page is the web page. It is safe for concurrent use.
type Page struct {
	opts  Options
	tmpl  *template.Template
	key   [32]byte // HMAC key of the action tokens
	rates rates
}

// New returns the page.
func New(o Options) (*Page, error) {
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	p := &Page{opts: o}
	if _, err := rand.Read(p.key[:]); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	p.tmpl = t
	return p, nil
}

var _ supervisor.UI = (*Page)(nil)

// viewer is who reads the page: the user name on http_addr, "" on the
// control socket.
type viewer struct {
	user   string
	remote bool
}

type viewerKey struct{}

// Handler serves the page under /ui/ through api (supervisor.UI).
func (p *Page) Handler(api http.Handler, remote bool) http.Handler {
	s := &server{Page: p, api: apiClient{api}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", s.overview)
	mux.HandleFunc("GET /ui/daemons/{name}", s.daemon)
	mux.HandleFunc("GET /ui/daemons/{name}/log", s.follow)
	mux.HandleFunc("POST /ui/daemons/{name}/{verb}", s.act)
	mux.HandleFunc("GET /ui/fleet", s.fleet)
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/", http.FileServerFS(assets)))
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.opts.Log.Warn("cross-origin request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	h := csrf.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		v := viewer{remote: remote}
		if remote {
			user, ok := p.authenticate(r)
			if !ok {
				hd.Set("WWW-Authenticate", `Basic realm="nsfd", charset="UTF-8"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			v.user = user
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	})
}

// authenticate checks r's basic authentication against Users; without
// Users every caller is let in (loopback only, nsfd.ini sees to it).
func (p *Page) authenticate(r *http.Request) (string, bool) {
	if p.opts.Users == nil {
		return "", true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", false
	}
	if err := p.opts.Users.Authorize(r.Context(), &wire.Request{User: user, Pass: pass, Command: "view"}); err != nil {
		var we *wire.Error
		// A user limited to other commands than view may still act.
		if !errors.As(err, &we) || we.Code != wire.CodeAuthorization {
			p.opts.Log.Warn("authentication failed", "user", user, "from", r.RemoteAddr)
			return "", false
		}
	}
	return user, true
}

// may reports whether the viewer may run verb: every verb on the control
// socket, and on http_addr what the user's line in http_users allows.
func (p *Page) may(r *http.Request, verb string) bool {
	v := viewerOf(r)
	if !v.remote || p.opts.Users == nil {
		return true
	}
	user, pass, _ := r.BasicAuth()
	return p.opts.Users.Authorize(r.Context(), &wire.Request{User: user, Pass: pass, Command: verb}) == nil
}

func viewerOf(r *http.Request) viewer {
	v, _ := r.Context().Value(viewerKey{}).(viewer)
	return v
}

// actor is who the master's log names for r's actions.
func actor(r *http.Request) string {
	v := viewerOf(r)
	switch {
	case !v.remote:
		return "web"
	case v.user == "":
		return "web:" + r.RemoteAddr
	}
	return "web:" + v.user
}

// token is the action token of r's viewer.
func (p *Page) token(r *http.Request) string {
	v := viewerOf(r)
	m := hmac.New(sha256.New, p.key[:])
	fmt.Fprintf(m, "nsfd-action\x00%t\x00%s", v.remote, v.user)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validToken reports whether r carries its viewer's action token.
func (p *Page) validToken(r *http.Request) bool {
	got := r.PostFormValue("token")
	return got != "" && hmac.Equal([]byte(got), []byte(p.token(r)))
}

// server is the page's handlers over one API.
type server struct {
	*Page
	api apiClient
}

// rates turns the request counters of successive statuses into requests
// per second: each daemon's counter is compared with the one seen at least
// rateWindow before.
type rates struct {
	mu   sync.Mutex
	prev map[string]sample
	cur  map[string]sample
}

type sample struct {
	at       time.Time
	requests int
}

// rateWindow is the shortest time a rate is measured over.
const rateWindow = time.Second

// rate records daemon's counter n at now and returns its requests per
// second, or -1 when there is nothing yet to compare with.
func (r *rates) rate(daemon string, n int, now time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		r.prev, r.cur = map[string]sample{}, map[string]sample{}
	}
	c, ok := r.cur[daemon]
	if !ok || now.Sub(c.at) >= rateWindow {
		if ok {
			r.prev[daemon] = c
		}
		r.cur[daemon] = sample{now, n}
	}
	p, ok := r.prev[daemon]
	if !ok || n < p.requests {
		return -1
	}
	dt := now.Sub(p.at).Seconds()
	if dt <= 0 {
		return -1
	}
	return float64(n-p.requests) / dt
}
