package worker

import (
	"errors"
	"strconv"
)

// Environment variables of the worker contract (docs/protocol.md): the
// master sets every one of them for each worker it starts. This is their one
// home; the master, the configuration checks, the client and the queue use
// these names.
const (
	EnvListenFDs     = "LISTEN_FDS"     // number of inherited listeners, starting at fd 3
	EnvListenPID     = "LISTEN_PID"     // pid the listeners are meant for
	EnvListenFDNames = "LISTEN_FDNAMES" // colon-separated names, one per listener
	EnvNotifySocket  = "NOTIFY_SOCKET"  // datagram socket for status messages
	EnvWatchdogUSec  = "WATCHDOG_USEC"  // watchdog interval in microseconds, when set
	EnvWatchdogPID   = "WATCHDOG_PID"   // pid the watchdog interval is meant for
	EnvDaemon        = "NSFD_DAEMON"    // daemon name
	EnvWorker        = "NSFD_WORKER"    // worker slot number, 0-based
	EnvNode          = "NSFD_NODE"      // node name of the master
	// EnvMaxRequests is the worker's own max_requests limit, jitter
	// included: the master replaces the worker once it has begun that many
	// requests. Unset (or 0) when unlimited.
	EnvMaxRequests = "NSFD_MAX_REQUESTS"
	// EnvLoadBoard is the path of the pool's load board: a file of
	// LoadBoardEntries entries that the workers of one pool share, each
	// saying how many connections one of them holds, so that a worker
	// serving many connections at once leaves a new one to a less loaded
	// peer (Balance). Unset when the master keeps none.
	EnvLoadBoard = "NSFD_LOAD_BOARD"

	// The environment of an exec health check (health = exec:...), beside
	// EnvDaemon: the address of the daemon's first listener ("127.0.0.1:7001",
	// "/run/nsfd/web.sock"; an unspecified host reads 127.0.0.1 or ::1), and
	// every listener as PROTO:ADDRESS, separated by blanks
	// ("tcp:127.0.0.1:7001 unix:/run/nsfd/web.sock").
	EnvAddress   = "NSFD_ADDRESS"
	EnvListeners = "NSFD_LISTENERS"

	// The registry, for workers that call other daemons by name (framework
	// daemons, the built-in queue): its type (sqlite or postgres), its DSN
	// (a file path or a PostgreSQL DSN) and the oldest heartbeat a daemon
	// may have to be resolved, a Go duration ("15s").
	EnvRegistryType   = "NSFD_REGISTRY_TYPE"
	EnvRegistryDSN    = "NSFD_REGISTRY_DSN"
	EnvRegistryMaxAge = "NSFD_REGISTRY_MAX_AGE"
	// EnvResolver is the path of the master's resolver socket: a read-only
	// view of the registry (HTTP+JSON, GET /v1/resolve/NAME) through which a
	// worker resolves names without opening the registry itself, so that it
	// needs neither a database driver nor access to the database.
	EnvResolver = "NSFD_RESOLVER"
	// EnvEncoding is the wire codec of the worker's daemon (its `encoding`).
	EnvEncoding = "NSFD_ENCODING"

	// Secured calls (the daemon's tls_cert, tls_key, tls_client_ca and
	// tokens, as absolute paths; unset when the daemon has none): the
	// worker serves TLS with this certificate and key (Server.Serve does,
	// see TLSConfig), wants and verifies a client certificate signed by
	// one of the CAs of EnvTLSClientCA, and checks every request's
	// user and token against the tokens file (wire.ServeConn does).
	EnvTLSCert     = "NSFD_TLS_CERT"
	EnvTLSKey      = "NSFD_TLS_KEY"
	EnvTLSClientCA = "NSFD_TLS_CLIENT_CA"
	EnvTokens      = "NSFD_TOKENS"
)

// Environment variables of a framework client (client.FromEnv, `nsfd call`)
// that calls daemons with TLS or tokens. The master does not set them: give
// them to a worker that calls such daemons in its [env].
const (
	// EnvClientCA is a PEM file of the CAs that sign the daemons'
	// certificates; unset: the system's roots.
	EnvClientCA = "NSFD_CA"
	// EnvClientCert and EnvClientKey are the client's own certificate and
	// key, for daemons that want mutual TLS.
	EnvClientCert = "NSFD_CLIENT_CERT"
	EnvClientKey  = "NSFD_CLIENT_KEY"
	// EnvServerName overrides the name a daemon's certificate is verified
	// against.
	EnvServerName = "NSFD_SERVER_NAME"
	// EnvToken is the client's credential, USER:TOKEN; EnvTokenFile names
	// a file that holds it (mode 0600), which is preferred: a variable
	// is inherited by every child process.
	EnvToken     = "NSFD_TOKEN"
	EnvTokenFile = "NSFD_TOKEN_FILE"
)

// MasterEnv returns the names of every environment variable the master sets
// for its workers: a daemon's own environment may not set them.
func MasterEnv() []string {
	return []string{
		EnvListenFDs, EnvListenPID, EnvListenFDNames, EnvNotifySocket, EnvWatchdogUSec, EnvWatchdogPID,
		EnvDaemon, EnvWorker, EnvNode, EnvMaxRequests, EnvLoadBoard,
		EnvRegistryType, EnvRegistryDSN, EnvRegistryMaxAge, EnvResolver, EnvEncoding,
		EnvTLSCert, EnvTLSKey, EnvTLSClientCA, EnvTokens,
	}
}

// The load board (EnvLoadBoard): LoadBoardEntries entries of
// LoadBoardEntrySize bytes, each two 32-bit words in the host's byte order,
// changed only by atomic operations: the pid of the worker that claimed
// it (0: free) and the number of connections that worker holds, whose
// bit 31 says the worker is waiting in accept. A worker
// claims a free entry (compare-and-swap of 0 to its pid), keeps the count
// up to date and frees the entry when it stops accepting; the master frees
// the entry of a worker it has reaped.
const (
	LoadBoardEntries   = 1024
	LoadBoardEntrySize = 8
	LoadBoardSize      = LoadBoardEntries * LoadBoardEntrySize
)

// ListenFDsStart is the first inherited listener fd, as in sd_listen_fds(3).
const ListenFDsStart = 3

// listenFDNamePrefix names an inherited fd that LISTEN_FDNAMES leaves
// unnamed: LISTEN_FD_3, LISTEN_FD_4, ...
const listenFDNamePrefix = "LISTEN_FD_"

// Keys of the words on NOTIFY_SOCKET, for whoever reads them (the master,
// systemd). A message is newline-separated KEY=VALUE words.
const (
	KeyReady         = "READY"
	KeyBusy          = "BUSY"
	KeyWatchdog      = "WATCHDOG"
	KeyStatus        = "STATUS"
	KeyStopping      = "STOPPING"
	KeyRequests      = "REQUESTS"
	KeyReloading     = "RELOADING"
	KeyMonotonicUSec = "MONOTONIC_USEC"
)

// Status words a worker sends on NOTIFY_SOCKET, one KEY=VALUE per line.
const (
	NotifyReady    = KeyReady + "=1"    // the worker accepts connections
	NotifyBusy     = KeyBusy + "=1"     // the worker is handling a request (Net::Server's "processing")
	NotifyIdle     = KeyBusy + "=0"     // the worker waits for a request (Net::Server's "waiting")
	NotifyWatchdog = KeyWatchdog + "=1" // liveness ping
	// NotifyWatchdogTrigger asks the master to treat the worker as hung.
	NotifyWatchdogTrigger = KeyWatchdog + "=trigger"
	NotifyStopping        = KeyStopping + "=1" // the worker leaves on its own
	NotifyStatus          = KeyStatus + "="    // prefix of a free-text status line
	// NotifyRequests is the prefix of REQUESTS=n: the number of requests the
	// worker has begun since it started. The master counts requests from it
	// instead of from BUSY=1 (docs/protocol.md).
	NotifyRequests = KeyRequests + "="
	// NotifyReloading and NotifyMonotonicUSec are what the master itself
	// sends to systemd (Type=notify-reload) around a reload: RELOADING=1
	// with MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>, then READY=1.
	NotifyReloading     = KeyReloading + "=1"
	NotifyMonotonicUSec = KeyMonotonicUSec + "="
)

// MaxNotifySize is the largest notify datagram the master reads; longer ones are dropped and counted.
const MaxNotifySize = 4096

// ParseCount parses a count of the protocol, the n of REQUESTS=n and of
// NSFD_MAX_REQUESTS: decimal digits only, no sign or space, at most what an
// int holds.
func ParseCount(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("empty")
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(string(b), 10, strconv.IntSize-1)
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
