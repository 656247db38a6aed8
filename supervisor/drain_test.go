package supervisor

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The drain order, on fake pools whose Stop waits for the test: in a
// synctest bubble, synctest.Wait returns once every drain is either in a
// pool's Stop or waiting for another daemon's drain, so which Stops have
// begun shows exactly what the master lets drain at that point.

// dependencyChain is a requires b requires c; d stands alone.
func dependencyChain(tm *testMaster) {
	tm.write("a.ini", tm.daemonFile("a.sock", "requires = b"))
	tm.write("b.ini", tm.daemonFile("b.sock", "requires = c"))
	tm.write("c.ini", tm.daemonFile("c.sock"))
	tm.write("d.ini", tm.daemonFile("d.sock"))
}

// startChain loads the dependency chain and waits until the gate has
// started each daemon after what it requires: a reload starts c and d, the
// gate b and then a, on Run's goroutine, in the turns of its loop that
// follow (where a request that comes at once may go first).
func startChain(t *testing.T, tm *testMaster) {
	t.Helper()
	dependencyChain(tm)
	tm.reload()
	synctest.Wait()
	for _, n := range []string{"a", "b", "c", "d"} {
		if got := tm.pools.pool(t, n).Calls(); !slices.Contains(got, "start") {
			t.Fatalf("%s's pool was asked %v after the chain loaded; want start", n, got)
		}
	}
}

// stepDrains opens the gates one daemon at a time in the order given, and
// checks that after each, exactly the expected Stops have begun.
func stepDrains(t *testing.T, tm *testMaster, gates map[string]func(), steps []struct {
	open  string
	begun []string
}) {
	t.Helper()
	for _, st := range steps {
		if st.open != "" {
			gates[st.open]()
		}
		synctest.Wait()
		got := tm.pools.stopOrder()
		slices.Sort(got)
		if !slices.Equal(got, st.begun) {
			t.Fatalf("after %q drained, the Stops begun are %v; want %v", st.open, got, st.begun)
		}
	}
}

// TestShutdownDrainsDependentsFirst: at shutdown a daemon stops only after
// every daemon that requires it has drained; unrelated daemons drain at
// once, in parallel.
func TestShutdownDrainsDependentsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := startTestMaster(t, nil, nil)
		startChain(t, tm)
		gates := map[string]func(){}
		for _, n := range []string{"a", "b", "c", "d"} {
			gates[n] = tm.pools.gate(n)
		}
		tm.stopLoop()
		stepDrains(t, tm, gates, []struct {
			open  string
			begun []string
		}{
			{"", []string{"a", "d"}},
			{"d", []string{"a", "d"}},
			{"a", []string{"a", "b", "d"}},
			{"b", []string{"a", "b", "c", "d"}},
			{"c", []string{"a", "b", "c", "d"}},
		})
		tm.waitLoop()
	})
}

// TestRemovedDaemonsDrainDependentsFirst: daemons whose files are removed
// together drain in the same order; while b still drains, its file coming
// back is an error until a later reload, and a daemon that stays is
// untouched.
func TestRemovedDaemonsDrainDependentsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := startTestMaster(t, nil, nil)
		startChain(t, tm)
		gates := map[string]func(){"a": tm.pools.gate("a"), "b": tm.pools.gate("b"), "c": tm.pools.gate("c")}
		for _, n := range []string{"a.ini", "b.ini", "c.ini"} {
			tm.remove(n)
		}
		if r := tm.reload(); !slices.Equal(r.Removed, []string{"a", "b", "c"}) {
			t.Fatalf("reload: %+v; want a, b, c removed", r)
		}
		stepDrains(t, tm, gates, []struct {
			open  string
			begun []string
		}{{"", []string{"a"}}, {"a", []string{"a", "b"}}})

		tm.write("b.ini", tm.daemonFile("b.sock"))
		r := tm.reload()
		if !strings.Contains(r.Errors[tm.file("b.ini")], "still draining") || len(r.Added) != 0 {
			t.Errorf("reload while b drains: %+v; want b.ini's error, nothing added", r)
		}
		gates["b"]()
		gates["c"]()
		synctest.Wait()
		if got := tm.daemonNames(); !slices.Equal(got, []string{"d"}) {
			t.Errorf("daemons after the drains: %v; want d", got)
		}
		if r := tm.reload(); !slices.Equal(r.Added, []string{"b"}) {
			t.Errorf("reload after b drained: %+v; want b added", r)
		}
		if got := tm.pools.pool(t, "d").Calls(); !slices.Equal(got, []string{"start"}) {
			t.Errorf("d's pool was asked %v; want start only", got)
		}
	})
}

// TestStopWaitsForTheDrain: Stop returns once the daemon has drained; the
// daemon is then stopped, its registration removed, and Start brings it
// back.
func TestStopWaitsForTheDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := startTestMaster(t, nil, nil)
		tm.write("a.ini", tm.daemonFile("a.sock"))
		tm.reload()
		open := tm.pools.gate("a")
		ctx := context.Background()
		stopped := make(chan error, 1)
		go func() { stopped <- tm.Stop(ctx, "a") }()
		synctest.Wait()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) before the pool drained", err)
		default:
		}
		if err := tm.Start(ctx, "a"); err == nil || !strings.Contains(err.Error(), "still stopping") {
			t.Errorf("Start while a drains: %v; want still stopping", err)
		}
		open()
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if d := tm.daemon("a"); d.State != "stopped" || len(d.Listeners) != 0 {
			t.Errorf("after Stop: %+v; want stopped, no listener", d)
		}
		if _, kept := tm.registered("a"); kept {
			t.Error("a is still to be registered after Stop")
		}
		if err := tm.Start(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if d := tm.daemon("a"); d.State != "running" {
			t.Errorf("after Start: %s, want running", d.State)
		}
		// A request that waits longer than its caller gives up on its own.
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		open = tm.pools.gate("a")
		if err := tm.Stop(tctx, "a"); err != context.DeadlineExceeded {
			t.Errorf("Stop past its deadline: %v", err)
		}
		open()
	})
}
