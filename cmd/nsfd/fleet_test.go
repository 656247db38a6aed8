//go:build linux

package main

// End-to-end tests of a fleet: five masters, each in a network namespace of
// its own (internal/fleettest), on one PostgreSQL registry; a client that
// keeps calling through a node's death, a partition and its healing, and a
// PostgreSQL restart; `nsfd fleet`, `nsfd resolve` across nodes; the
// registry's changes heard through LISTEN/NOTIFY.

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/internal/fleettest"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/remote"
	"github.com/nsfd/nsfd/wire"
)

// fleetKV is the kv daemon every node of a fleet runs, on its address.
func fleetKV(dir string) string {
	return "command = " + filepath.Join(binDir, "kv") + " --dir " + dir + "\nport = {{addr}}:7100\ntype = notify\n" +
		"min_servers = 2\nmax_servers = 4\nmin_spare_servers = 0\nmax_spare_servers = 2\n"
}

// nodesOf lists the nodes of endpoints, in order.
func nodesOf(eps []registry.Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Node)
	}
	return out
}

// resolveNodes is the set of nodes a fresh Resolve of name returns, sorted.
func resolveNodes(r registry.Registry, name string, maxAge time.Duration) []string {
	eps, err := r.Resolve(context.Background(), name, registry.ResolveOptions{MaxAge: maxAge})
	if err != nil {
		return nil
	}
	ns := nodesOf(eps)
	slices.Sort(ns)
	return ns
}

// callers keep calling kv info through c until stopped, and count.
type callers struct {
	calls, failures atomic.Int64
	mu              sync.Mutex
	errs            []string
	failedAt        []time.Time
	byNode          map[string]int64
	stop            chan struct{}
	wg              sync.WaitGroup
}

func startCallers(t *testing.T, c *client.Client, n int) *callers {
	cs := &callers{stop: make(chan struct{}), byNode: map[string]int64{}}
	for range n {
		cs.wg.Go(func() {
			for {
				select {
				case <-cs.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := c.Call(ctx, "kv", &wire.Request{Command: "info"})
				cancel()
				if err == nil {
					err = resp.Err()
				}
				cs.calls.Add(1)
				cs.mu.Lock()
				if err != nil {
					cs.failures.Add(1)
					cs.errs = append(cs.errs, err.Error())
					cs.failedAt = append(cs.failedAt, time.Now())
				} else {
					var i struct{ Node string }
					resp.DecodeData(&i)
					cs.byNode[i.Node]++
				}
				cs.mu.Unlock()
			}
		})
	}
	t.Cleanup(cs.halt)
	return cs
}

func (cs *callers) halt() {
	select {
	case <-cs.stop:
	default:
		close(cs.stop)
	}
	cs.wg.Wait()
}

// failuresSince is how many calls failed after t, and the last of them.
func (cs *callers) failuresSince(t time.Time) (int, time.Time) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n, last := 0, time.Time{}
	for _, at := range cs.failedAt {
		if at.After(t) {
			n++
			last = at
		}
	}
	return n, last
}

func (cs *callers) served(node string) int64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.byNode[node]
}

// TestFleet: five nodes resolve one another, local node first; a client
// keeps calling kv through a node killed, a node partitioned and healed, a
// killed node started again and a PostgreSQL restart, and every call
// succeeds but those in flight on the node that went away; the dead
// node's endpoints leave resolve within 3 heartbeats; `nsfd fleet` shows
// it all.
func TestFleet(t *testing.T) {
	const nodes, nCallers = 5, 4
	f := fleettest.New(t, fleettest.Options{Nodes: nodes, Nsfd: filepath.Join(binDir, "nsfd"), Heartbeat: 250 * time.Millisecond})
	hb := f.Heartbeat()
	maxAge := 3 * hb
	for _, n := range f.Nodes {
		n.Write("kv.ini", fleetKV(filepath.Join(n.Dir, "var", "kv")))
	}
	f.StartAll()
	reg := f.Registry(t)
	all := []string{"node1", "node2", "node3", "node4", "node5"}
	waitFor(t, "kv on every node", 60*time.Second, func() bool { return slices.Equal(resolveNodes(reg, "kv", maxAge), all) })

	// Resolve across nodes, local node first, from each node's own host.
	for _, n := range []*fleettest.Node{f.Nodes[0], f.Nodes[2], f.Nodes[4]} {
		out, errOut, code := n.Nsfd("resolve", "--json", "kv")
		var got struct {
			Endpoints []struct{ Node, Address string }
		}
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Endpoints) != nodes {
			t.Fatalf("nsfd resolve kv on %s: %d %q %q", n.Name, code, out, errOut)
		}
		if got.Endpoints[0].Node != n.Name || got.Endpoints[0].Address != n.Addr+":7100" {
			t.Fatalf("on %s, resolve gives %+v first, want its own endpoint", n.Name, got.Endpoints[0])
		}
	}

	// `nsfd fleet` from a host that runs no master: an etc/ with only
	// nsfd.ini, in the client's namespace.
	viewer := newEnv(t)
	viewer.write("nsfd.ini", "[registry]\ntype = postgres\ndsn = "+f.DSN+"\nheartbeat = "+hb.String()+"\n")
	fleetView := func() (map[string]fleetNode, string) {
		t.Helper()
		out, errOut, code := f.Run("", filepath.Join(binDir, "nsfd"), "--etc", viewer.etc, "fleet", "--json")
		if code != 0 {
			t.Fatalf("nsfd fleet --json: %d %q", code, errOut)
		}
		var v struct{ Nodes []fleetNode }
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("nsfd fleet --json: %v\n%s", err, out)
		}
		m := map[string]fleetNode{}
		for _, n := range v.Nodes {
			m[n.Node] = n
		}
		text, errOut, code := f.Run("", filepath.Join(binDir, "nsfd"), "--etc", viewer.etc, "fleet")
		if code != 0 {
			t.Fatalf("nsfd fleet: %d %q", code, errOut)
		}
		return m, text
	}
	view, text := fleetView()
	for _, n := range f.Nodes {
		v := view[n.Name]
		if len(v.Daemons) != 1 || v.Daemons[0].Name != "kv" || v.Daemons[0].State != registry.StateRunning ||
			len(v.Daemons[0].Endpoints) != 1 || v.Daemons[0].Endpoints[0].Address != n.Addr+":7100" ||
			!slices.Equal(v.MasterPIDs, []int{n.MasterPID()}) {
			t.Fatalf("nsfd fleet shows %s as %+v", n.Name, v)
		}
		if !strings.Contains(text, n.Name+"  ") || !strings.Contains(text, "tcp "+n.Addr+":7100") {
			t.Fatalf("nsfd fleet's table lacks %s:\n%s", n.Name, text)
		}
	}
	t.Logf("nsfd fleet:\n%s", text)

	// The client: on the LAN, not a node; it watches the registry.
	c := client.New(reg, client.Options{LocalNode: "client", MaxAge: maxAge, Dial: f.Dial,
		DialTimeout: time.Second, AckTimeout: time.Second})
	defer c.Close()
	cs := startCallers(t, c, nCallers)
	waitFor(t, "calls on every node", 30*time.Second, func() bool {
		for _, n := range all {
			if cs.served(n) == 0 {
				return false
			}
		}
		return true
	})

	// Kill node2: its endpoints leave resolve within 3 heartbeats, the
	// calls it was serving may fail, none after.
	gone := func(what, node string, since time.Time) time.Duration {
		t.Helper()
		waitFor(t, node+" out of resolve", 10*time.Second, func() bool {
			return !slices.Contains(resolveNodes(reg, "kv", maxAge), node)
		})
		took := time.Since(since)
		if took > maxAge+500*time.Millisecond { // the poll's own lateness on a loaded machine (1.05 s for 0.75 s seen)
			t.Errorf("%s: %s left resolve after %v, more than 3 heartbeats (%v)", what, node, took, maxAge)
		}
		return took
	}
	phase := func(what string, since time.Time, settle time.Duration) {
		t.Helper()
		before := cs.calls.Load()
		waitFor(t, "calls after "+what, 30*time.Second, func() bool {
			return cs.calls.Load() > before+200 && time.Since(since) > settle
		})
		n, last := cs.failuresSince(since)
		if n > nCallers {
			cs.mu.Lock()
			t.Fatalf("%s: %d calls failed, more than the %d in flight: %q", what, n, nCallers, cs.errs[len(cs.errs)-n:])
		}
		t.Logf("%s: %d calls failed (in flight on the node that went), the last %v after", what, n, last.Sub(since).Round(time.Millisecond))
		// None failed once the first had: every later call went elsewhere.
		if n > 0 && last.Sub(since) > 3*time.Second {
			t.Fatalf("%s: a call failed %v after, once the node was known gone", what, last.Sub(since))
		}
	}
	killed := time.Now()
	f.Nodes[1].Kill()
	t.Logf("kill: node2 out of resolve after %v", gone("kill", "node2", killed))
	phase("kill of node2", killed, maxAge)

	// Partition node3: connects to it hang, and calls on its connections
	// get no answer; they fail after AckTimeout, the rest go elsewhere.
	cut := time.Now()
	f.Nodes[2].Partition()
	t.Logf("partition: node3 out of resolve after %v", gone("partition", "node3", cut))
	phase("partition of node3", cut, 2*time.Second)
	served3 := cs.served("node3")

	// Heal node3: it registers again (its rows were stale, or purged) and
	// serves.
	healed := time.Now()
	f.Nodes[2].Heal()
	waitFor(t, "node3 back in resolve", 30*time.Second, func() bool { return slices.Contains(resolveNodes(reg, "kv", maxAge), "node3") })
	t.Logf("heal: node3 back in resolve after %v", time.Since(healed).Round(time.Millisecond))
	waitFor(t, "node3 serving again", 30*time.Second, func() bool { return cs.served("node3") > served3 })

	// node2 starts again: its master clears what the killed one left and
	// registers.
	f.Nodes[1].Start()
	waitFor(t, "node2 back", 60*time.Second, func() bool { return slices.Equal(resolveNodes(reg, "kv", maxAge), all) })

	// PostgreSQL restarts: daemons keep serving, the client on its last
	// resolution, the masters register again once it is back.
	down := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.PG.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	before := cs.calls.Load()
	waitFor(t, "calls with PostgreSQL down", 30*time.Second, func() bool { return cs.calls.Load() > before+200 })
	if err := f.PG.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every node fresh again", 30*time.Second, func() bool { return slices.Equal(resolveNodes(reg, "kv", maxAge), all) })
	if n, _ := cs.failuresSince(down); n > 0 {
		cs.mu.Lock()
		t.Fatalf("%d calls failed while PostgreSQL restarted: %q", n, cs.errs[max(0, len(cs.errs)-n):])
	}
	view, _ = fleetView()
	for _, n := range all {
		if v := view[n]; v.Stale || len(v.Daemons) != 1 {
			t.Fatalf("after PostgreSQL's restart, nsfd fleet shows %s as %+v", n, v)
		}
	}
	cs.halt()
	t.Logf("%d calls in all, %d failed: %q; served by node: %v", cs.calls.Load(), cs.failures.Load(), cs.errs, cs.byNode)
}

// TestFleetChangesAreHeard: a change of the registry reaches a client that
// caches for an hour at once (LISTEN/NOTIFY), and every master forwards it
// to its workers on its resolver socket.
func TestFleetChangesAreHeard(t *testing.T) {
	f := fleettest.New(t, fleettest.Options{Nodes: 2, Nsfd: filepath.Join(binDir, "nsfd")})
	for _, n := range f.Nodes {
		n.Write("kv.ini", fleetKV(filepath.Join(n.Dir, "var", "kv")))
	}
	f.StartAll()
	reg := f.Registry(t)
	maxAge := 3 * f.Heartbeat()
	waitFor(t, "kv on both nodes", 60*time.Second, func() bool {
		return slices.Equal(resolveNodes(reg, "kv", maxAge), []string{"node1", "node2"})
	})
	// A worker's view: node1's resolver socket's stream of changes.
	var (
		mu    sync.Mutex
		heard []string
		ready = make(chan struct{})
	)
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	rc := remote.Dial(filepath.Join(f.Nodes[0].Dir, "var", "run", "resolve.sock"))
	defer rc.Close()
	go rc.Watch(wctx, func() { close(ready) }, func(name string) {
		mu.Lock()
		heard = append(heard, name)
		mu.Unlock()
	})
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("node1's resolver socket does not stream changes")
	}

	// An hour of cache: only a notification can tell the client.
	c := client.New(reg, client.Options{LocalNode: "client", CacheTTL: time.Hour, MaxAge: time.Hour, Dial: f.Dial})
	defer c.Close()
	eps, err := c.Resolve(context.Background(), "kv")
	if err != nil || len(eps) != 2 {
		t.Fatalf("resolve: %v %v", eps, err)
	}
	// A ghost endpoint, registered and removed behind the client's back:
	// once it has seen the first change its watch is up (a watch that
	// comes up makes it read the registry again), and the second it can
	// only have heard.
	ghost := registry.Daemon{Node: "ghost", Name: "kv", Encoding: "json", MasterPID: 1,
		Endpoints: []registry.Endpoint{{Proto: registry.ProtoTCP, Address: "198.18.0.99:7100"}}}
	if err := reg.Register(context.Background(), ghost); err != nil {
		t.Fatal(err)
	}
	hasGhost := func() bool {
		eps, err := c.Resolve(context.Background(), "kv")
		return err == nil && slices.Contains(nodesOf(eps), "ghost")
	}
	waitFor(t, "the client to see the ghost", 10*time.Second, hasGhost)
	if err := reg.Unregister(context.Background(), "ghost", "kv"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client to hear the ghost gone", 10*time.Second, func() bool { return !hasGhost() })

	removed := time.Now()
	if _, errOut, code := f.Nodes[1].Nsfd("stop", "kv"); code != 0 {
		t.Fatalf("nsfd stop kv on node2: %s", errOut)
	}
	waitFor(t, "the client to drop node2's kv", 10*time.Second, func() bool {
		eps, err := c.Resolve(context.Background(), "kv")
		return err == nil && slices.Equal(nodesOf(eps), []string{"node1"})
	})
	t.Logf("a client caching for an hour dropped node2's kv %v after it stopped", time.Since(removed).Round(time.Millisecond))
	waitFor(t, "node1's workers told", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(heard, "kv")
	})
}
