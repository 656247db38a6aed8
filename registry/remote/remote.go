package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// PathResolve is the path under which a name is resolved.
const PathResolve = "/v1/resolve/"

// MaxResponse bounds the answer a Client reads.
const MaxResponse = 1 << 20

// Resolver is what a Handler serves: a registry.Registry is one.
type Resolver interface {
	// Resolve is registry.Registry's Resolve.
	Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error)
}

// ResolverFunc adapts a function to a Resolver.
type ResolverFunc func(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	return f(ctx, name, o)
}

var _ Resolver = ResolverFunc(nil)

// endpoint is a registry.Endpoint on the wire.
type endpoint struct {
	Node       string `json:"node"`
	Daemon     string `json:"daemon"`
	Proto      string `json:"proto"`
	Address    string `json:"address"`
	Encoding   string `json:"encoding"`
	TLS        bool   `json:"tls,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	Unhealthy  bool   `json:"unhealthy,omitempty"`
}

// answer is the body of every response.
type answer struct {
	Endpoints []endpoint `json:"endpoints,omitempty"`
	Error     string     `json:"error,omitempty"`
	Reason    string     `json:"reason,omitempty"` // reasonNotFound, reasonStale
}

const (
	reasonNotFound = "not_found"
	reasonStale    = "stale"
)

// Handler serves GET /v1/resolve/{name} from r and, if r is also a
// registry.Watcher, GET /v1/watch (see ServeWatch).
func Handler(r Resolver) http.Handler {
	mux := http.NewServeMux()
	if w, ok := r.(registry.Watcher); ok {
		mux.Handle("GET "+PathWatch, ServeWatch(w))
	}
	mux.HandleFunc("GET "+PathResolve+"{name}", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		q := req.URL.Query()
		o := registry.ResolveOptions{LocalNode: q.Get("local")}
		if s := q.Get("max_age"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				reply(w, http.StatusBadRequest, answer{Error: fmt.Sprintf("max_age %q: not a duration", s)})
				return
			}
			o.MaxAge = d
		}
		if name == "" {
			reply(w, http.StatusBadRequest, answer{Error: "no name"})
			return
		}
		eps, err := r.Resolve(req.Context(), name, o)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			reply(w, http.StatusNotFound, answer{Error: err.Error(), Reason: reasonNotFound})
		case errors.Is(err, registry.ErrStale):
			reply(w, http.StatusNotFound, answer{Error: err.Error(), Reason: reasonStale})
		case err != nil:
			reply(w, http.StatusServiceUnavailable, answer{Error: err.Error()})
		default:
			a := answer{Endpoints: make([]endpoint, 0, len(eps))}
			for _, e := range eps {
				a.Endpoints = append(a.Endpoints, endpoint(e))
			}
			reply(w, http.StatusOK, a)
		}
	})
	return mux
}

func reply(w http.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(a)
}

// Client resolves names through a resolver socket. It is safe for
// concurrent use and keeps its connections to the socket for reuse.
type Client struct {
	path string
	hc   *http.Client
}

// Dial returns a Client of the resolver socket at path. It does not connect
// yet: each Resolve dials, or reuses an idle connection.
func Dial(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// Resolve asks the master's registry for name's endpoints (see
// registry.Registry.Resolve); the errors wrap registry.ErrNotFound or
// registry.ErrStale as its own do. ctx bounds the request.
func (c *Client) Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	q := url.Values{}
	if o.LocalNode != "" {
		q.Set("local", o.LocalNode)
	}
	if o.MaxAge > 0 {
		q.Set("max_age", o.MaxAge.String())
	}
	u := url.URL{Scheme: "http", Host: "nsfd", Path: PathResolve + name, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("resolve %q through %s: %w", name, c.path, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("resolve %q through %s: %w", name, c.path, err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxResponse)).Decode(&a); err != nil {
		return nil, fmt.Errorf("resolve %q through %s: %s: %w", name, c.path, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		var sentinel error
		switch a.Reason {
		case reasonNotFound:
			sentinel = registry.ErrNotFound
		case reasonStale:
			sentinel = registry.ErrStale
		}
		return nil, &resolveError{msg: a.Error, status: resp.Status, err: sentinel}
	}
	eps := make([]registry.Endpoint, 0, len(a.Endpoints))
	for _, e := range a.Endpoints {
		eps = append(eps, registry.Endpoint(e))
	}
	return eps, nil
}

// Close closes the idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// resolveError is the master's error, with its sentinel.
type resolveError struct {
	msg, status string
	err         error // registry.ErrNotFound, registry.ErrStale or nil
}

func (e *resolveError) Error() string {
	if e.msg == "" {
		return "resolver: " + e.status
	}
	return e.msg
}

func (e *resolveError) Unwrap() error { return e.err }
