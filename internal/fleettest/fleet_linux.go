package fleettest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/testcert"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/pgtest"
	_ "github.com/nsfd/nsfd/registry/postgres" // the fleet's registry
)

// Addresses of the fleet's LAN.
const (
	// PGAddr is PostgreSQL's address.
	PGAddr = "198.18.0.1"
	// ClientAddr is the client namespace's address.
	ClientAddr = "198.18.0.250"
	// DefaultHeartbeat is the masters' heartbeat when Options.Heartbeat is 0.
	DefaultHeartbeat = 200 * time.Millisecond
	// pgServerName is the name in PostgreSQL's certificate (Options.SSL).
	pgServerName = "registry.fleet.test"
)

// NodeAddr is the address of node i (0-based): 198.18.0.11, ...
func NodeAddr(i int) string { return fmt.Sprintf("198.18.0.%d", 11+i) }

// Options configure New.
type Options struct {
	// Nodes is how many nodes the fleet has (at most 200).
	Nodes int
	// Nsfd is the nsfd binary the masters run.
	Nsfd string
	// Heartbeat is the masters' `[registry] heartbeat`; 0 means
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// SSL runs PostgreSQL with TLS only (hostssl): the masters connect
	// with sslmode=verify-full against a CA made for the fleet (CAFile).
	SSL bool
	// PGSettings are more lines of PostgreSQL's postgresql.conf.
	PGSettings []string
}

// Fleet is a running fleet.
type Fleet struct {
	tb   testing.TB
	opts Options
	id   string // the namespaces' prefix: nsft<pid>x<n>

	// PG is the registry's cluster, in its own namespace.
	PG *pgtest.Server
	// DSN is the registry as the masters reach it: over TCP, as role
	// nsfd with its password (and, with Options.SSL, verify-full).
	DSN string
	// LocalDSN is the same database and role through the cluster's UNIX
	// socket, which the test process reaches from its own namespace.
	LocalDSN string
	// CAFile is the CA of PostgreSQL's certificate (Options.SSL).
	CAFile string
	// Password is the role nsfd's.
	Password string
	// Nodes are the nodes, node1 to nodeN.
	Nodes []*Node

	sw, pgNS, clientNS string
	namespaces         []string // every namespace made, to delete
	mu                 sync.Mutex
}

// seq numbers the fleets of this process.
var seq atomic.Int32

// New makes a fleet for tb: the namespaces and their links, PostgreSQL
// started, the nodes' etc/ written (not started: Start, StartAll). It fails
// tb if it cannot; cleanup tears everything down.
func New(tb testing.TB, o Options) *Fleet {
	tb.Helper()
	if o.Nodes < 1 || o.Nodes > 200 {
		tb.Fatalf("fleettest: %d nodes", o.Nodes)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if os.Geteuid() != 0 {
		tb.Fatal("fleettest: network namespaces need root")
	}
	removeStale()
	f := &Fleet{tb: tb, opts: o, id: fmt.Sprintf("%s%dx%d", nsPrefix, os.Getpid(), seq.Add(1))}
	tb.Cleanup(f.teardown)
	f.sw, f.pgNS, f.clientNS = f.id+"-sw", f.id+"-pg", f.id+"-cl"
	must(tb, f.addNS(f.sw))
	must(tb, ip("-n", f.sw, "link", "add", "br0", "type", "bridge"))
	must(tb, ip("-n", f.sw, "link", "set", "br0", "up"))
	must(tb, f.attach(f.pgNS, PGAddr))
	must(tb, f.attach(f.clientNS, ClientAddr))
	f.startPG()
	for i := range o.Nodes {
		n := &Node{f: f, Index: i, Name: fmt.Sprintf("node%d", i+1), Addr: NodeAddr(i), NS: fmt.Sprintf("%s-n%d", f.id, i+1)}
		must(tb, f.attach(n.NS, n.Addr))
		n.port = portName(n.NS)
		n.setup()
		f.Nodes = append(f.Nodes, n)
	}
	return f
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// addNS makes namespace ns, with its loopback up.
func (f *Fleet) addNS(ns string) error {
	if err := ip("netns", "add", ns); err != nil {
		return err
	}
	f.mu.Lock()
	f.namespaces = append(f.namespaces, ns)
	f.mu.Unlock()
	return ip("-n", ns, "link", "set", "lo", "up")
}

// attach makes namespace ns and links it to the bridge with addr: a veth
// whose end in the switch's namespace is a port of the bridge (named after
// ns's role, what Partition takes down), the other ns's eth0.
func (f *Fleet) attach(ns, addr string) error {
	if err := f.addNS(ns); err != nil {
		return err
	}
	port := portName(ns)
	for _, args := range [][]string{
		{"-n", f.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", f.sw, "link", "set", port, "master", "br0"},
		{"-n", f.sw, "link", "set", port, "up"},
		{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// portName is the bridge port of namespace ns: its role ("pg", "n3").
func portName(ns string) string { return ns[strings.LastIndexByte(ns, '-')+1:] }

// startPG starts PostgreSQL in its namespace, listening on PGAddr, with a
// role nsfd that logs in with a password over TCP (and TLS only, with
// Options.SSL), and its database.
func (f *Fleet) startPG() {
	tb := f.tb
	var b [12]byte
	rand.Read(b[:])
	f.Password = hex.EncodeToString(b[:])
	o := pgtest.Options{NetNS: nsPath(f.pgNS), Listen: PGAddr, Settings: f.opts.PGSettings,
		HBA: []string{"host all all 198.18.0.0/24 scram-sha-256"}}
	sslmode := "disable"
	if f.opts.SSL {
		dir := tb.TempDir()
		ca := testcert.NewCA(tb, "fleet registry CA")
		f.CAFile = ca.WriteCA(tb, dir, "registry-ca")
		o.SSLCert, o.SSLKey = ca.WriteFiles(tb, dir, "registry", pgServerName, PGAddr)
		o.HBA = []string{"hostssl all all 198.18.0.0/24 scram-sha-256", "hostnossl all all 0.0.0.0/0 reject"}
		sslmode = "verify-full sslrootcert=" + f.CAFile
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgtest.StartTimeout)
	defer cancel()
	pg, err := pgtest.LaunchWith(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	f.PG = pg
	must(tb, pg.Exec(ctx, "postgres", "CREATE ROLE nsfd LOGIN PASSWORD '"+f.Password+"'"))
	must(tb, pg.Exec(ctx, "postgres", "CREATE DATABASE fleet OWNER nsfd"))
	f.DSN = fmt.Sprintf("host=%s port=%d user=nsfd password=%s dbname=fleet sslmode=%s connect_timeout=5",
		PGAddr, pgtest.Port, f.Password, sslmode)
	f.LocalDSN = fmt.Sprintf("host=%s port=%d user=nsfd password=%s dbname=fleet sslmode=disable", pg.Dir(), pgtest.Port, f.Password)
}

// Heartbeat is the masters' heartbeat.
func (f *Fleet) Heartbeat() time.Duration { return f.opts.Heartbeat }

// Registry opens the fleet's registry from the test process (through
// PostgreSQL's socket) and closes it at cleanup.
func (f *Fleet) Registry(tb testing.TB) registry.Registry {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := registry.Open(ctx, registry.TypePostgres, f.LocalDSN)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// Dial connects to address from the client namespace, as a host of the
// fleet's LAN that runs no master would: a client.Options.Dial.
func (f *Fleet) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	return dialIn(ctx, f.clientNS, network, address)
}

// PartitionPG cuts PostgreSQL off the LAN (its bridge port down), HealPG
// brings it back: what the masters see of a registry down.
func (f *Fleet) PartitionPG() error { return ip("-n", f.sw, "link", "set", portName(f.pgNS), "down") }

// HealPG brings PostgreSQL back on the LAN.
func (f *Fleet) HealPG() error { return ip("-n", f.sw, "link", "set", portName(f.pgNS), "up") }

// StartAll starts every node's master.
func (f *Fleet) StartAll() {
	f.tb.Helper()
	for _, n := range f.Nodes {
		n.Start()
	}
}

// WriteAll writes etc/name on every node: {{node}} in content becomes the
// node's name, {{addr}} its address.
func (f *Fleet) WriteAll(name, content string) {
	f.tb.Helper()
	for _, n := range f.Nodes {
		n.Write(name, content)
	}
}

// teardown kills everything in the fleet's namespaces, deletes them, and
// removes the cluster; on failure it logs the end of each master's log.
func (f *Fleet) teardown() {
	for _, n := range f.Nodes {
		n.stopMaster(5 * time.Second)
		if f.tb.Failed() {
			f.tb.Logf("%s: master output:\n%s\ncentral log (end):\n%s", n.Name, n.out.String(), tail(n.Log(), 6000))
		}
	}
	f.mu.Lock()
	nss := append([]string(nil), f.namespaces...)
	f.mu.Unlock()
	for _, ns := range nss {
		if left := killAll(ns, 10*time.Second); len(left) > 0 {
			f.tb.Errorf("fleettest: processes %v survive in %s", left, ns)
		}
	}
	if f.PG != nil {
		if err := f.PG.Close(); err != nil {
			f.tb.Error(err)
		}
	}
	for _, ns := range nss {
		if err := ip("netns", "del", ns); err != nil {
			f.tb.Error(err)
		}
	}
	for _, n := range f.Nodes {
		os.RemoveAll(n.Dir)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// nodeDir makes a short directory for a node: UNIX socket paths are
// limited to 107 bytes.
func nodeDir(tb testing.TB) string {
	dir, err := os.MkdirTemp("", "nsft")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	return filepath.Clean(dir)
}
