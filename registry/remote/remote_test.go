package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// serve serves r on a UNIX socket for the test and returns a Client of it.
func serve(t *testing.T, r Resolver) *Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "nsfd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "resolve.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(r)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c := Dial(path)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestResolveRoundTrip(t *testing.T) {
	want := []registry.Endpoint{
		{Node: "n1", Daemon: "kv", Proto: registry.ProtoTCP, Address: "127.0.0.1:7001", Encoding: "json"},
		{Node: "n2", Daemon: "kv", Proto: registry.ProtoUnix, Address: "/run/nsfd/kv.sock", Encoding: "json+gzip", Unhealthy: true},
	}
	var got registry.ResolveOptions
	c := serve(t, ResolverFunc(func(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
		got = o
		switch name {
		case "kv":
			return want, nil
		case "gone":
			return nil, fmt.Errorf("resolve %q: %w", name, registry.ErrNotFound)
		case "old":
			return nil, fmt.Errorf("resolve %q: %w", name, registry.ErrStale)
		}
		return nil, errors.New("database is locked")
	}))
	ctx := context.Background()
	o := registry.ResolveOptions{LocalNode: "n1", MaxAge: 15 * time.Second}
	eps, err := c.Resolve(ctx, "kv", o)
	if err != nil || !reflect.DeepEqual(eps, want) {
		t.Fatalf("resolve kv: %+v, %v; want %+v", eps, err, want)
	}
	if got != o {
		t.Fatalf("the server got options %+v, want %+v", got, o)
	}
	for name, sentinel := range map[string]error{"gone": registry.ErrNotFound, "old": registry.ErrStale} {
		_, err := c.Resolve(ctx, name, o)
		if !errors.Is(err, sentinel) || err.Error() != fmt.Sprintf("resolve %q: %v", name, sentinel) {
			t.Errorf("resolve %s: %v, want the registry's error wrapping %v", name, err, sentinel)
		}
	}
	_, err = c.Resolve(ctx, "broken", o)
	if err == nil || errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrStale) || err.Error() != "database is locked" {
		t.Errorf("resolve broken: %v, want the registry's failure, neither not found nor stale", err)
	}
}

func TestResolveRefusesBadQuery(t *testing.T) {
	c := serve(t, ResolverFunc(func(context.Context, string, registry.ResolveOptions) ([]registry.Endpoint, error) {
		t.Error("resolved a bad query")
		return nil, nil
	}))
	req, _ := http.NewRequest(http.MethodGet, "http://nsfd"+PathResolve+"kv?max_age=soon", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("max_age=soon: %s, want 400", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://nsfd"+PathResolve+"kv", nil)
	if resp, err = c.hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s, want 405: nothing can be written", resp.Status)
	}
}

func TestResolveWithoutServer(t *testing.T) {
	c := Dial(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Resolve(context.Background(), "kv", registry.ResolveOptions{}); err == nil || errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("resolve without a server: %v", err)
	}
}
