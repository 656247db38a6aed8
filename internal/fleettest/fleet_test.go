//go:build linux

package fleettest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestFleetNetwork: the fleet's hosts reach each other and PostgreSQL on
// their LAN, the host's own network sees none of it, a partition makes a
// connect hang, and the teardown leaves no namespace behind.
func TestFleetNetwork(t *testing.T) {
	var id string
	t.Run("fleet", func(t *testing.T) {
		f := New(t, Options{Nodes: 2, Nsfd: "/bin/false"})
		id = f.id
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := f.Dial(ctx, "tcp", PGAddr+":5432")
		if err != nil {
			t.Fatalf("client to PostgreSQL: %v", err)
		}
		c.Close()
		// The registry works as the masters reach it, and from the test.
		out, errOut, code := f.Run(f.Nodes[0].NS, "ip", "-o", "addr", "show", "eth0")
		if code != 0 || !strings.Contains(out, NodeAddr(0)+"/24") {
			t.Fatalf("node1's address: %d %q %q", code, out, errOut)
		}
		r := f.Registry(t)
		if _, err := r.List(ctx); err != nil {
			t.Fatal(err)
		}
		// The host's own network holds none of the fleet's addresses.
		if out, err := exec.Command("ip", "-o", "addr").Output(); err != nil || strings.Contains(string(out), "198.18.0.") {
			t.Fatalf("the host's addresses: %v\n%s", err, out)
		}
		// PostgreSQL cut off: a connect hangs until its deadline.
		if err := f.PartitionPG(); err != nil {
			t.Fatal(err)
		}
		pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer pcancel()
		// The dial ends with the context's error or the poller's deadline
		// (whichever of the two timers the runtime saw first): both are a
		// timeout; a refusal or an unreachable host would not be.
		_, err = f.Dial(pctx, "tcp", PGAddr+":5432")
		var ne net.Error
		if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("connect to a partitioned host: %v, want it to hang until the deadline", err)
		}
		if err := f.HealPG(); err != nil {
			t.Fatal(err)
		}
		if c, err := f.Dial(ctx, "tcp", PGAddr+":5432"); err != nil {
			t.Fatalf("after the heal: %v", err)
		} else {
			c.Close()
		}
	})
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), id+"-") {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}
