package registry

import (
	"context"
	"errors"
	"time"
)

// Types of registry, the values of `[registry] type` in nsfd.ini.
const (
	TypeSQLite   = "sqlite"
	TypePostgres = "postgres"
)

// Daemon states. Resolve returns only StateRunning daemons; the supervisor may
// store others (say "starting" or "fatal") for List to show.
const (
	StateRunning  = "running"
	StateStopping = "stopping"
)

// WorkerStarting is the state WorkerStarted stores for a worker given none.
const WorkerStarting = "starting"

// Endpoint protocols, as Endpoint.Proto spells them.
const (
	ProtoTCP      = "tcp"
	ProtoUDP      = "udp"
	ProtoUnix     = "unix"
	ProtoUnixgram = "unixgram"
)

// DefaultMaxAge is how old a heartbeat may be for Resolve to return the
// daemon when ResolveOptions.MaxAge is zero: three beats of the default
// `[registry] heartbeat = 5s`.
const DefaultMaxAge = 15 * time.Second

var (
	// ErrNotFound means no such daemon is registered. Resolve returns it,
	// wrapped with the name, when no running daemon of that name has an
	// endpoint; the methods that change a daemon return it when its row
	// is gone.
	ErrNotFound = errors.New("not registered")
	// ErrStale means the name is registered as running, but no master
	// has refreshed its heartbeat within ResolveOptions.MaxAge: its master
	// is down, hung, or cut off from the registry.
	ErrStale = errors.New("registered, but its heartbeat is stale (is its master down?)")
	// ErrReplaced means the registry's database is no longer the one this
	// handle opened: its SQLite file was deleted or replaced. Heartbeat
	// returns it, wrapped; the master then opens the registry anew (which
	// creates a missing file) and registers its daemons again.
	ErrReplaced = errors.New("the registry database was deleted or replaced")
)

// Daemon is a row of the daemons table: one daemon on one node. Several nodes
// may register the same name.
type Daemon struct {
	Node        string    // node_name of the master that runs it
	Name        string    // the name clients resolve
	State       string    // StateRunning, StateStopping, …
	Encoding    string    // the wire codec clients must speak ("json", …)
	MasterPID   int       // pid of the master that registered it
	ConfigHash  string    // hash of its configuration, to spot a stale one
	StartedAt   time.Time // when the daemon started; millisecond precision
	HeartbeatAt time.Time // the master's last sign of life; set by the registry
	LastExit    string    // how its most recent worker ended (WorkerExited); set by the registry
	Endpoints   []Endpoint
}

// Endpoint is one listener of a daemon: a row of the endpoints table.
type Endpoint struct {
	Node    string // the daemon's node
	Daemon  string // the daemon's name
	Proto   string // ProtoTCP, ProtoUDP, ProtoUnix or ProtoUnixgram
	Address string // "127.0.0.1:41234", "[::1]:7001" or "/path/echo.sock"
	// Encoding is the wire codec the daemon speaks (its Daemon.Encoding):
	// set by Resolve and List, ignored by Register.
	Encoding string
	// TLS is set when the daemon serves TLS on this endpoint (its tls_cert
	// is set): a client must speak TLS to it, and verify its certificate.
	TLS bool
	// ServerName is the name a client verifies the endpoint's certificate
	// against; "" means the host of Address (an IP address, which the
	// certificate must then list).
	ServerName string
	// Unhealthy is set when the daemon's health check fails on this node
	// (its master marks every endpoint of the daemon, with Register).
	// Resolve leaves such endpoints out while another node has the daemon
	// healthy, and returns them, so marked, when none has.
	Unhealthy bool
}

// Worker is one worker process of a daemon: a row of the workers table.
type Worker struct {
	Node      string
	Daemon    string
	PID       int
	Slot      int       // NSFD_WORKER
	State     string    // the pool's view: "starting", "idle", "busy", …
	StartedAt time.Time // millisecond precision; zero means now
	Requests  int64     // requests served so far
	LastExit  string    // how the previous worker in this slot ended, if the supervisor knows
}

// ResolveOptions tunes Resolve.
type ResolveOptions struct {
	// LocalNode is the caller's node: its endpoints come first. Empty means
	// no node is preferred.
	LocalNode string
	// MaxAge is the oldest heartbeat a daemon may have to be returned;
	// zero means DefaultMaxAge. Set it to a few heartbeat intervals.
	MaxAge time.Duration
	// AliveNode and AlivePID name a master known to be running: the
	// master itself, answering its own workers on the resolver socket.
	// Its daemons are returned however old their heartbeat: a heartbeat
	// late behind a slow registry write does not mean the master is down.
	AliveNode string
	AlivePID  int
}

// Registry is where daemons are found by name. The master writes it: on
// spawn, exit, heartbeat and a periodic sync of counters, never once per
// request. Clients and `nsfd resolve` read it. All methods are safe for
// concurrent use, and several processes may open the same registry.
//
// Times are kept as unix milliseconds, and the registry's own clock (the
// database server's, for PostgreSQL) stamps heartbeats and judges their age,
// so masters on several hosts need not agree on the time.
type Registry interface {
	// Register inserts or updates the daemon row of (d.Node, d.Name) and
	// replaces its endpoints with d.Endpoints, in one transaction. It
	// stamps the heartbeat (d.HeartbeatAt and d.LastExit are ignored); an
	// empty d.State means StateRunning, a zero d.StartedAt means now. The
	// daemon's workers are kept.
	Register(ctx context.Context, d Daemon) error
	// SetState changes a daemon's state, StateStopping say, so that
	// Resolve stops returning it while it drains. ErrNotFound if the
	// daemon is not registered.
	SetState(ctx context.Context, node, name, state string) error
	// Unregister deletes a daemon with its endpoints and workers, in one
	// transaction. Unregistering an unknown daemon is not an error.
	Unregister(ctx context.Context, node, name string) error
	// WorkerStarted inserts, or replaces, the row of worker w.PID of
	// daemon (w.Node, w.Daemon). An empty w.State means WorkerStarting.
	// ErrNotFound if the daemon is not registered.
	WorkerStarted(ctx context.Context, w Worker) error
	// WorkerExited deletes the worker's row and keeps lastExit (how it
	// ended: "exit status 1", "signal: killed") in the daemon's LastExit.
	// A worker already gone is not an error; ErrNotFound if the daemon is
	// not registered.
	WorkerExited(ctx context.Context, node, daemon string, pid int, lastExit string) error
	// SyncWorkers makes ws the daemon's worker rows, in one transaction:
	// it is the daemon's complete worker set (states, request counters),
	// and rows of pids not in ws are deleted, so a missed WorkerExited
	// heals at the next sync. The Node and Daemon fields of ws are
	// ignored. ErrNotFound if the daemon is not registered.
	SyncWorkers(ctx context.Context, node, daemon string, ws []Worker) error
	// Workers returns a daemon's workers by slot, then pid; none if the
	// daemon is unknown.
	Workers(ctx context.Context, node, daemon string) ([]Worker, error)
	// Heartbeat stamps the heartbeat of every daemon of node registered by
	// masterPID. ErrNotFound if there is none: the rows were purged (a
	// PurgeStale elsewhere while this master could not reach the
	// registry, say) and the master must Register its daemons again.
	// ErrReplaced if the database itself is gone: the master must open
	// the registry anew, then register its daemons again.
	Heartbeat(ctx context.Context, node string, masterPID int) error
	// Resolve returns the endpoints of the daemons called name that are
	// StateRunning with a heartbeat within o.MaxAge, each with its daemon's
	// encoding: o.LocalNode's
	// first, then the other nodes', each node's in registration order.
	// The other nodes come in turn, starting at a different one on each
	// call, so that clients spread over them. Unhealthy endpoints are
	// left out while any endpoint is healthy; when none is, they are all
	// returned (Endpoint.Unhealthy set): a sick daemon may still answer,
	// and nothing at all surely does not. Errors wrap ErrNotFound
	// when no such daemon is running, or ErrStale when some are but
	// every heartbeat is too old, with the name.
	Resolve(ctx context.Context, name string, o ResolveOptions) ([]Endpoint, error)
	// List returns every registered daemon, in any state, with its
	// endpoints, ordered by name then node.
	List(ctx context.Context) ([]Daemon, error)
	// PurgeNode deletes every daemon of node with its endpoints and
	// workers, what a master that crashed on this node left behind, and
	// returns how many daemons it deleted. A master calls it on start-up,
	// before it registers anything.
	PurgeNode(ctx context.Context, node string) (int, error)
	// PurgeStale deletes the daemons, with their endpoints and workers,
	// whose heartbeat is older than olderThan, and returns how many.
	PurgeStale(ctx context.Context, olderThan time.Duration) (int, error)
	// Close releases the database. Further calls fail.
	Close() error
}
