package bench

// BenchmarkFleet: a fleet of masters on one PostgreSQL registry, each in a
// network namespace of its own (internal/fleettest): resolve latency with
// and without the client's cache, fail-over when a node dies or is cut
// off, and what the fleet's registry writes cost PostgreSQL, per node,
// extrapolated to 1,000 nodes.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nsfdclient "github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/internal/fleettest"
	"github.com/nsfd/nsfd/internal/sqlstore"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// fleetResult is what BenchmarkFleet measured.
type fleetResult struct {
	nodes, perNode int
	heartbeat      time.Duration
	startup        time.Duration // from the first master's start until every daemon resolves

	uncached, uncachedP99 time.Duration // reg.Resolve through PostgreSQL's socket
	cached, cachedP99     time.Duration // client.Resolve from its cache, the watch up
	cachedN               int

	window          time.Duration // the idle window of the cost measurement
	commits, rows   int64         // PostgreSQL's transactions and rows written in it
	pgCPU           time.Duration // PostgreSQL's CPU in it (postmaster and backends)
	writesPerNode   float64       // transactions per node per second
	rowsPerNode     float64
	cpuPerNodeShare float64 // of one CPU, per node

	kill, partition failover
	healBack        time.Duration // healed until back in resolve
}

// failover is one node going away while callers call.
type failover struct {
	what        string
	calls       int64
	failed      int           // calls that failed after it went
	lastFailure time.Duration // after it went
	later       int           // failures more than AckTimeout after the first: not in flight when it went
	worst       time.Duration // the slowest call that began after it went and succeeded
	outOfResolv time.Duration // until Resolve no longer returned it
}

func BenchmarkFleet(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("a fleet needs root (network namespaces)")
	}
	r := &fleetResult{
		nodes:     quick(10, 3),
		perNode:   quick(50, 10),
		heartbeat: quick(5*time.Second, time.Second),
		window:    quick(30*time.Second, 10*time.Second),
	}
	f := fleettest.New(b, fleettest.Options{Nodes: r.nodes, Nsfd: bins.nsfd, Heartbeat: r.heartbeat})
	maxAge := 3 * r.heartbeat
	for _, n := range f.Nodes {
		n.Write("kv.ini", "command = "+bins.kv+" --dir "+n.Dir+"/var/kv\nport = {{addr}}:7100\ntype = notify\n"+
			"min_servers = 2\nmax_servers = 4\nmin_spare_servers = 0\nmax_spare_servers = 2\n")
		for i := 1; i < r.perNode; i++ {
			n.Write(fmt.Sprintf("d%02d.ini", i), "command = /bin/sleep 100000\nport = {{addr}}:0\n"+
				"min_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n")
		}
	}
	t0 := time.Now()
	f.StartAll()
	reg := f.Registry(b)
	ctx := context.Background()
	all := r.nodes * r.perNode
	if !waitFor(3*time.Minute, 50*time.Millisecond, func() bool {
		ds, err := reg.List(ctx)
		if err != nil {
			return false
		}
		running := 0
		for _, d := range ds {
			if d.State == registry.StateRunning {
				running++
			}
		}
		eps, err := reg.Resolve(ctx, "kv", registry.ResolveOptions{MaxAge: maxAge})
		return running == all && err == nil && len(eps) == r.nodes
	}) {
		b.Fatalf("the fleet's %d daemons did not all register in 3 minutes", all)
	}
	r.startup = time.Since(t0)

	measureCost(b, r, f, reg)
	measureResolve(b, r, reg, f, maxAge)
	measureFailover(b, r, f, reg, maxAge)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(r.uncached.Microseconds()), "resolve-us")
	b.ReportMetric(float64(r.cached.Nanoseconds()), "cached-resolve-ns")
	b.ReportMetric(r.writesPerNode, "writes/node/s")
	recordFleet(r)
}

// measureResolve times Resolve of kv (one endpoint on every node): the
// registry's query, and the client's cached answer.
func measureResolve(b *testing.B, r *fleetResult, reg registry.Registry, f *fleettest.Fleet, maxAge time.Duration) {
	ctx := context.Background()
	o := registry.ResolveOptions{LocalNode: "client", MaxAge: maxAge}
	n := quick(2000, 500)
	lat := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if _, err := reg.Resolve(ctx, "kv", o); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	r.uncached, r.uncachedP99 = percentile(lat, 0.5), percentile(lat, 0.99)

	c := nsfdclient.New(reg, nsfdclient.Options{LocalNode: "client", MaxAge: maxAge, Dial: f.Dial})
	defer c.Close()
	if _, err := c.Resolve(ctx, "kv"); err != nil {
		b.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the watch comes up, and drops the first answer once
	if _, err := c.Resolve(ctx, "kv"); err != nil {
		b.Fatal(err)
	}
	r.cachedN = quick(200000, 50000)
	lat = make([]time.Duration, 0, r.cachedN)
	for range r.cachedN {
		t := time.Now()
		if _, err := c.Resolve(ctx, "kv"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	r.cached, r.cachedP99 = percentile(lat, 0.5), percentile(lat, 0.99)
}

// measureCost reads what the idle fleet's heartbeats and syncs cost
// PostgreSQL over a window: transactions and rows written
// (pg_stat_database), and the CPU of the postmaster and its backends.
func measureCost(b *testing.B, r *fleetResult, f *fleettest.Fleet, reg registry.Registry) {
	s, ok := sqlstore.Of(reg)
	if !ok {
		b.Fatal("the fleet's registry is not a SQL store")
	}
	stats := func() (commits, rows int64) {
		err := s.Reader().QueryRowContext(context.Background(), `SELECT xact_commit, tup_inserted + tup_updated + tup_deleted
			FROM pg_stat_database WHERE datname = current_database()`).Scan(&commits, &rows)
		if err != nil {
			b.Fatal(err)
		}
		return commits, rows
	}
	// First two heartbeats, every master's first full sync behind them,
	// and PostgreSQL's idle interval: a backend that went idle flushes
	// its statistics within 10 s (the test's own queries while it waited
	// for the fleet), which would count in the window.
	time.Sleep(max(2*r.heartbeat, 11*time.Second))
	c0, r0 := stats()
	cpu0 := pgCPU(f.PG.PID())
	time.Sleep(r.window)
	// Statistics reach pg_stat_database within a second of a commit.
	time.Sleep(1500 * time.Millisecond)
	c1, r1 := stats()
	cpu1 := pgCPU(f.PG.PID())
	window := r.window + 1500*time.Millisecond
	r.commits, r.rows, r.pgCPU = c1-c0-2, r1-r0, cpu1-cpu0 // the two reads of the stats commit too
	r.window = window
	r.writesPerNode = float64(r.commits) / window.Seconds() / float64(r.nodes)
	r.rowsPerNode = float64(r.rows) / window.Seconds() / float64(r.nodes)
	r.cpuPerNodeShare = r.pgCPU.Seconds() / window.Seconds() / float64(r.nodes)
}

// pgCPU is the CPU the postmaster at pid and its children (the backends)
// have used, the children it reaped included.
func pgCPU(pid int) time.Duration {
	total := procCPU(pid) + reapedCPU(pid)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, err := readProc(p); err == nil && info.ppid == pid {
			total += info.cpu
		}
	}
	return total
}

// reapedCPU is cutime + cstime of pid: its reaped children's CPU.
func reapedCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(cu+cs) * clockTick
}

// caller calls kv info in a loop, recording when calls begin, how long
// they take and whether they fail.
type fleetCalls struct {
	mu    sync.Mutex
	calls []fleetCall
	n     atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

type fleetCall struct {
	begin, end time.Time
	err        bool
}

func startFleetCalls(c *nsfdclient.Client, callers int) *fleetCalls {
	fc := &fleetCalls{stop: make(chan struct{})}
	for range callers {
		fc.wg.Go(func() {
			for {
				select {
				case <-fc.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t := time.Now()
				resp, err := c.Call(ctx, "kv", &wire.Request{Command: "info"})
				cancel()
				if err == nil {
					err = resp.Err()
				}
				fc.n.Add(1)
				fc.mu.Lock()
				fc.calls = append(fc.calls, fleetCall{t, time.Now(), err != nil})
				fc.mu.Unlock()
			}
		})
	}
	return fc
}

func (fc *fleetCalls) halt() {
	close(fc.stop)
	fc.wg.Wait()
}

// since summarizes the calls that ended after t.
func (fc *fleetCalls) since(t time.Time, fo *failover) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var first time.Time
	for _, c := range fc.calls {
		if c.end.Before(t) {
			continue
		}
		fo.calls++
		switch {
		case c.err:
			fo.failed++
			fo.lastFailure = max(fo.lastFailure, c.end.Sub(t))
			if first.IsZero() {
				first = c.end
			} else if c.end.Sub(first) > nsfdclient.DefaultAckTimeout+500*time.Millisecond {
				fo.later++
			}
		case !c.begin.Before(t):
			fo.worst = max(fo.worst, c.end.Sub(c.begin))
		}
	}
}

// measureFailover kills one node and partitions another while 4 callers
// call kv through a client on the LAN, with the client's defaults
// (DialTimeout and AckTimeout 2 s, DownFor 5 s).
func measureFailover(b *testing.B, r *fleetResult, f *fleettest.Fleet, reg registry.Registry, maxAge time.Duration) {
	c := nsfdclient.New(reg, nsfdclient.Options{LocalNode: "client", MaxAge: maxAge, Dial: f.Dial})
	defer c.Close()
	fc := startFleetCalls(c, 4)
	defer fc.halt()
	settle := func() {
		before := fc.n.Load()
		waitFor(30*time.Second, 10*time.Millisecond, func() bool { return fc.n.Load() > before+500 })
	}
	outOf := func(node string, since time.Time) time.Duration {
		waitFor(5*maxAge, 10*time.Millisecond, func() bool {
			eps, err := reg.Resolve(context.Background(), "kv", registry.ResolveOptions{MaxAge: maxAge})
			if err != nil {
				return false
			}
			for _, e := range eps {
				if e.Node == node {
					return false
				}
			}
			return true
		})
		return time.Since(since)
	}
	settle()
	r.kill.what = "SIGKILL of a node's master"
	t := time.Now()
	f.Nodes[0].Kill()
	r.kill.outOfResolv = outOf(f.Nodes[0].Name, t)
	settle()
	fc.since(t, &r.kill)

	r.partition.what = "a node's link down"
	p := f.Nodes[1]
	t = time.Now()
	p.Partition()
	r.partition.outOfResolv = outOf(p.Name, t)
	time.Sleep(nsfdclient.DefaultDownFor) // a dial to it again, once it is no longer marked down
	settle()
	fc.since(t, &r.partition)

	t = time.Now()
	p.Heal()
	waitFor(time.Minute, 10*time.Millisecond, func() bool {
		eps, err := reg.Resolve(context.Background(), "kv", registry.ResolveOptions{MaxAge: maxAge})
		if err != nil {
			return false
		}
		for _, e := range eps {
			if e.Node == p.Name {
				return true
			}
		}
		return false
	})
	r.healBack = time.Since(t)
}
