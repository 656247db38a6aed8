package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/registry"
)

// scriptedWatch is a registry whose Watch the test drives: each watch
// hands the test a channel of names to announce, or an error to fail with.
type scriptedWatch struct {
	registry.Registry
	watches chan chan any
}

func (s *scriptedWatch) Watch(ctx context.Context, ready func(), changed func(string)) error {
	ch := make(chan any)
	select {
	case s.watches <- ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	ready()
	for {
		select {
		case v := <-ch:
			if err, ok := v.(error); ok {
				return err
			}
			changed(v.(string))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// subscriber records one Watch of the hub.
type subscriber struct {
	mu    sync.Mutex
	got   []string    // "ready" or the name
	heard chan string // each of got as it comes, while there is room
	block chan struct{}
	done  chan error
}

func subscribe(h *changeHub, block chan struct{}) *subscriber {
	s := &subscriber{block: block, heard: make(chan string, 4*subBuffer), done: make(chan error, 1)}
	go func() {
		s.done <- h.Watch(context.Background(), func() { s.add("ready") }, func(name string) {
			if s.block != nil {
				<-s.block
			}
			s.add(name)
		})
	}()
	return s
}

func (s *subscriber) add(v string) {
	s.mu.Lock()
	s.got = append(s.got, v)
	s.mu.Unlock()
	select {
	case s.heard <- v:
	default:
	}
}

// hears waits until s has heard name, skipping what it heard before.
func (s *subscriber) hears(t *testing.T, name string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case v := <-s.heard:
			if v == name {
				return
			}
		case <-timeout:
			t.Fatalf("%s not heard; heard %s", name, s.seen())
		}
	}
}
func (s *subscriber) seen() string { s.mu.Lock(); defer s.mu.Unlock(); return strings.Join(s.got, ",") }

func TestChangeHubFansOutAndFails(t *testing.T) {
	reg := &registrar{heartbeat: 20 * time.Millisecond, log: hclog.NewNullLogger()}
	sw := &scriptedWatch{watches: make(chan chan any)}
	reg.live.Store(&liveRegistry{sw})
	h := newChangeHub(reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)

	a, b := subscribe(h, nil), subscribe(h, nil)
	w := <-sw.watches // the hub's one watch of the registry, for both
	waitUntil(t, "both subscribed", func() bool { return a.seen() == "ready" && b.seen() == "ready" })
	w <- "kv"
	w <- registry.AnyName
	waitUntil(t, "both subscribers hear", func() bool {
		return a.seen() == "ready,kv," && b.seen() == "ready,kv,"
	})

	// The registry's watch fails: every stream ends, so that its client
	// knows it may miss changes; a new subscriber waits for the next watch.
	w <- errors.New("connection reset")
	for _, s := range []*subscriber{a, b} {
		if err := <-s.done; err == nil || !strings.Contains(err.Error(), "connection reset") {
			t.Fatalf("subscriber ended with %v, want the watch's failure", err)
		}
	}
	c := subscribe(h, nil)
	w = <-sw.watches
	waitUntil(t, "c subscribed", func() bool { return c.seen() == "ready" })
	w <- "echo"
	waitUntil(t, "the new subscriber hears", func() bool { return c.seen() == "ready,echo" })

	// A subscriber that falls behind is dropped, after what it was sent.
	block := make(chan struct{})
	slow := subscribe(h, block)
	waitUntil(t, "slow subscribed", func() bool { return slow.seen() == "ready" })
	for range subBuffer + 2 {
		w <- "x"
		// c hears each change before the next is sent: only slow falls
		// behind, however loaded the machine (c's buffer is no larger).
		c.hears(t, "x")
	}
	// Every change is out (c heard them all) before slow may catch up.
	waitUntil(t, "the others hear every change", func() bool { return strings.Count(c.seen(), "x") == subBuffer+2 })
	close(block)
	select {
	case err := <-slow.done:
		if !errors.Is(err, errFellBehind) {
			t.Fatalf("slow subscriber ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("slow subscriber not dropped; heard %d x, c heard %d", strings.Count(slow.seen(), "x"), strings.Count(c.seen(), "x"))
	}
	if n := strings.Count(slow.seen(), "x"); n < subBuffer {
		t.Fatalf("slow subscriber heard %d changes before it was dropped, want at least %d", n, subBuffer)
	}
}
