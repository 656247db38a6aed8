package remote

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// fakeWatcher resolves nothing and relays what the test sends it to each
// watch: a name, or an error that ends the watch.
type fakeWatcher struct {
	ResolverFunc
	watches chan chan any // each watch's channel, as it starts
	ended   chan error    // why each watch ended
}

func (f *fakeWatcher) Watch(ctx context.Context, ready func(), changed func(string)) (err error) {
	defer func() { f.ended <- err }()
	ch := make(chan any)
	f.watches <- ch
	ready()
	for {
		select {
		case v := <-ch:
			switch v := v.(type) {
			case string:
				changed(v)
			case error:
				return v
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestWatchStream: the resolver socket streams the registry's changes as
// they happen; a failure of the server's watch ends the stream with its
// reason, and a client that leaves ends the server's watch.
func TestWatchStream(t *testing.T) {
	f := &fakeWatcher{watches: make(chan chan any), ended: make(chan error, 2)}
	c := serve(t, f)
	var (
		mu    sync.Mutex
		names []string
		ready = make(chan struct{})
	)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(context.Background(), func() { close(ready) }, func(name string) {
			mu.Lock()
			names = append(names, name)
			mu.Unlock()
		})
	}()
	srv := <-f.watches
	<-ready
	srv <- "kv"
	srv <- registry.AnyName
	srv <- "echo"
	srv <- errors.New("registry unreachable")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "registry unreachable") {
			t.Fatalf("watch ended with %v, want the server's reason", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end with the server's")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(names, ",") != "kv,,echo" {
		t.Fatalf("heard %q, want kv, any name, echo", names)
	}

	// A client that leaves ends the server's watch.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- c.Watch(ctx, func() { cancel() }, func(string) {}) }()
	<-f.watches
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("watch after cancel: %v", err)
	}
	<-f.ended // the first watch's
	select {
	case err := <-f.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the server's watch ended with %v, want its request's cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server still watches for a client that left")
	}
}

// TestWatchNotServed: a resolver that cannot watch serves no stream, and
// the client says so.
func TestWatchNotServed(t *testing.T) {
	c := serve(t, ResolverFunc(func(context.Context, string, registry.ResolveOptions) ([]registry.Endpoint, error) {
		return nil, nil
	}))
	err := c.Watch(context.Background(), func() { t.Error("ready") }, func(string) { t.Error("changed") })
	if err == nil || !strings.Contains(err.Error(), http.StatusText(http.StatusNotFound)) {
		t.Fatalf("watch of a resolver that cannot: %v", err)
	}
}
