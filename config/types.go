package config

import (
	"os"
	"time"
)

// Defaults of Net::Server::PreFork and of nsfd's own supervision keys.
const (
	DefaultMinServers      = 5
	DefaultMaxServers      = 50
	DefaultMinSpareServers = 2
	DefaultMaxSpareServers = 10
	DefaultMaxRequests     = 1000
	DefaultMinChildTTL     = 10 * time.Second
	DefaultReadyTimeout    = 30 * time.Second
	DefaultGracefulTimeout = 10 * time.Second
	DefaultStartPeriod     = 1 * time.Second
	DefaultStartRetries    = 5
	DefaultBackoffInitial  = 100 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	// DefaultFatalRetry is how long a fatal daemon waits before it tries
	// again: long enough that a broken program costs one round of
	// start_retries a minute, short enough that what it waited for (a
	// database at boot, a file deployed late) brings it back unattended.
	DefaultFatalRetry = time.Minute
	// DefaultHookTimeout bounds a hook's run.
	DefaultHookTimeout = 30 * time.Second
	// DefaultHookConcurrency bounds the hooks running at once.
	DefaultHookConcurrency   = 4
	DefaultListenBacklog     = 1024
	DefaultSocketMode        = os.FileMode(0o660)
	DefaultHeartbeat         = 5 * time.Second
	DefaultEncoding          = "json"
	DefaultType              = TypeSimple
	DefaultNotifyAccess      = NotifyAccessMain
	DefaultRegistryType      = "sqlite"
	DefaultLogTarget         = "file"
	DefaultLogFormat         = "text"
	DefaultLogLevel          = "info"
	DefaultSyslogIdent       = "nsfd"
	DefaultSyslogFacility    = "daemon"
	DefaultRunDir            = "../var/run"
	DefaultControlSocketName = "nsfd.sock"
	DefaultLogFile           = "../var/log/nsfd.log"
	DefaultRegistryDSN       = "../var/registry.db"
)

// MaxServersLimit is the largest max_servers a daemon may have, from its
// file or from `nsfd scale` and SIGTTIN: a bound on the processes one
// daemon may ask the master for (a reload may briefly run twice as many),
// and on the arithmetic of scaling.
const MaxServersLimit = 10000

// The defaults of a system install: an etc directory under /etc (such as
// /etc/nsfd) puts the run directory, the central log and the SQLite registry
// where the Filesystem Hierarchy Standard has them, not under /etc/var.
const (
	SystemRunDir      = "/run/nsfd"
	SystemLogFile     = "/var/log/nsfd/nsfd.log"
	SystemRegistryDSN = "/var/lib/nsfd/registry.db"
)

// Worker start-up types: how the master learns that a new worker is ready.
const (
	// TypeSimple workers count as ready as soon as they have been executed.
	TypeSimple = "simple"
	// TypeNotify workers are ready once they send READY=1 on NOTIFY_SOCKET.
	TypeNotify = "notify"
)

// Who may send a worker's notify messages (notify_access).
const (
	// NotifyAccessMain: the worker process alone.
	NotifyAccessMain = "main"
	// NotifyAccessAll: any process in the worker's tree (its control
	// group, else its descendants).
	NotifyAccessAll = "all"
)

// Listener protocols, as Net::Server names them.
const (
	ProtoTCP       = "tcp"
	ProtoUDP       = "udp"
	ProtoUnix      = "unix"      // UNIX stream socket
	ProtoUnixgram  = "unixdgram" // UNIX datagram socket
	MasterFileName = "nsfd.ini"
)

// Master is the configuration of the master itself, read from etc/nsfd.ini.
// A missing nsfd.ini yields a Master with every default.
type Master struct {
	File          string // absolute path of nsfd.ini (may not exist)
	Dir           string // absolute etc directory
	NodeName      string // [nsfd] node_name; default: the host name
	RunDir        string // [nsfd] run_dir, absolute
	CgroupRoot    string // [nsfd] cgroup_root: a cgroup2 directory for the master's groups; empty: detected
	ControlSocket string // [nsfd] control_socket, absolute
	ControlGroup  string // [nsfd] control_group; empty: mode 0600
	MetricsAddr   string // [nsfd] metrics_addr; empty: metrics only on the control socket
	// ProcessBackend is [nsfd] process_backend, "pump" or "portable"; empty:
	// the system's default (pump on Linux, portable elsewhere).
	ProcessBackend string

	// The web status page on TCP ([nsfd] http_*); it is always on the
	// control socket at /ui/.
	HTTPAddr    string // host:port; empty: not on TCP
	HTTPTLSCert string // absolute; with HTTPTLSKey, serve HTTPS
	HTTPTLSKey  string // absolute
	HTTPUsers   string // absolute path of a tokens file (USER:BCRYPT); empty: no authentication (loopback only)

	Registry Registry
	Log      Log
	Hooks    Hooks

	Warnings []*Error // non-fatal remarks (deprecated or ignored keys)
}

// Hook events: what a hook is run on.
const (
	HookFatal   = "fatal"   // the daemon gave up: start_retries failed starts
	HookRestart = "restart" // a worker exited unplanned (crashed, failed, hung) and is replaced
	HookRecover = "recover" // the daemon runs again after it was fatal or backing off
)

// HookEvents lists the hook events, as the keys name them (on_EVENT).
var HookEvents = []string{HookFatal, HookRestart, HookRecover}

// HookCommands maps a hook event to the argv it runs.
type HookCommands map[string][]string

// Hooks is the [hooks] section of nsfd.ini: commands run for every daemon,
// and the bounds on all hooks.
type Hooks struct {
	Commands    HookCommands
	Timeout     time.Duration // a hook is killed after this
	Concurrency int           // hooks running at once; more wait their turn, or are dropped past a queue
}

// Registry is the [registry] section of nsfd.ini.
type Registry struct {
	Type      string        // sqlite | postgres
	DSN       string        // file path (absolute) for sqlite, URL or key=value string for postgres
	Heartbeat time.Duration // how often the master refreshes heartbeat_at
}

// Log is the [log] section of nsfd.ini.
type Log struct {
	Target         string // file | syslog | stderr
	File           string // absolute path, for target = file
	Format         string // text | json
	Level          string // trace | debug | info | warn | error (Net::Server's 0-4 accepted)
	MaxSize        int64  // bytes; 0: no size rotation
	MaxFiles       int    // rotated files kept
	SyslogAddr     string // empty: local socket; udp://host:port or tcp://host:port
	SyslogIdent    string
	SyslogFacility string
}

// Daemon is one daemon file, etc/NAME.ini (or a Net::Server conf file).
type Daemon struct {
	Name string // file name without extension, or daemon_name
	File string // absolute path of the file
	Dir  string // directory of the file; relative paths resolve against it

	Command []string // argv; Command[0] resolved against Dir when it contains a slash
	Builtin string   // a worker built into nsfd ("queue"); Command is empty then

	Listeners  []Listen
	Backlog    int         // listen
	SocketMode os.FileMode // mode of UNIX socket files

	Type              string // simple | notify
	MinServers        int
	MaxServers        int
	MinSpareServers   int
	MaxSpareServers   int
	MaxRequests       int // 0: unlimited
	MaxRequestsJitter int
	MinChildTTL       time.Duration
	ReadyTimeout      time.Duration
	GracefulTimeout   time.Duration
	StartPeriod       time.Duration // a worker exiting sooner counts as a failed start
	StartRetries      int           // consecutive failed starts before the daemon goes fatal
	BackoffInitial    time.Duration
	BackoffMax        time.Duration
	Watchdog          time.Duration // 0: no watchdog
	// Preload: the program is started once as a fork-server that loads
	// the application and forks the workers (docs/protocol.md).
	Preload      bool
	NotifyAccess string    // main | all: who may send a worker's notify messages
	Resources    Resources // memory_max, memory_high, pids_max, cpu_weight, cpu_max, max_rss

	User   string
	Group  string
	Groups []string // supplementary groups; empty: cleared
	Creds  Creds    // User, Group and Groups resolved when the file loads
	Chroot string
	Cwd    string
	Umask  int // -1: inherited
	Limits map[string]uint64

	// Secured calls (absolute paths; "" when not set): the worker serves
	// TLS with TLSCert and TLSKey, wants client certificates signed by
	// TLSClientCA, and checks tokens against Tokens. TLSServerName is the
	// certificate's first DNS name, which clients verify it against ("":
	// the endpoint's IP address).
	TLSCert, TLSKey, TLSClientCA, Tokens string
	TLSServerName                        string

	Env      []string // KEY=VALUE: env_file first, then [env]; later wins
	Encoding string
	Requires []string     // started once these run; stopped before them
	After    []string     // started after these, if they are configured; no dependency
	Hooks    HookCommands // on_fatal, on_restart, on_recover: run with the master's [hooks] ones

	FatalRetry time.Duration // a fatal daemon tries again after this; 0: never
	Health     HealthCheck   // health, health_interval, health_timeout, health_failures

	// IdleTimeout: with MinServers 0 (on demand), the workers are retired
	// back to none after this long without a request; 0: they stay.
	IdleTimeout time.Duration

	Hash     string   // digest of the effective configuration, for change detection
	Warnings []*Error // non-fatal remarks (Net::Server keys that do not apply under a supervisor)
}

// Creds is who a daemon's workers run as: user, group and groups resolved
// to numbers when the file loads, for the master the file was loaded for.
// Without user and group the workers keep the master's credentials (UID and
// GID are -1); with group alone they keep the master's uid and lose its
// supplementary groups.
type Creds struct {
	UID    int   // -1: the master's
	GID    int   // -1: the master's
	Groups []int // supplementary groups when UID is set; empty: none
}

// Listen is one listener of a daemon, parsed from Net::Server's port syntax.
type Listen struct {
	Proto string // tcp | udp | unix | unixdgram
	Addr  string // host:port for tcp/udp (port may be 0), absolute path for unix
	IPv   int    // 0 (any), 4 or 6: restricts the address family for tcp/udp
}

// String renders the listener in Net::Server syntax.
func (l Listen) String() string {
	s := l.Addr + "/" + l.Proto
	if l.IPv != 0 {
		s += "/IPv" + string(rune('0'+l.IPv))
	}
	return s
}

// Network returns the Go network name ("tcp4", "udp6", "unix", "unixgram").
func (l Listen) Network() string {
	switch l.Proto {
	case ProtoUnix:
		return "unix"
	case ProtoUnixgram:
		return "unixgram"
	}
	switch l.IPv {
	case 4:
		return l.Proto + "4"
	case 6:
		return l.Proto + "6"
	}
	return l.Proto
}

// Set is the whole desired configuration: the master and every daemon.
type Set struct {
	Master  *Master
	Daemons []*Daemon        // sorted by name, valid ones only
	Errors  map[string]error // file path -> error, for daemon files that failed
}
