package prefork

// Environment variables of the worker contract (docs/protocol.md).
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
)

// ListenFDsStart is the first inherited listener fd, as in sd_listen_fds(3).
const ListenFDsStart = 3

// Status words a worker sends on NOTIFY_SOCKET, one KEY=VALUE per line.
const (
	NotifyReady    = "READY=1"    // the worker accepts connections
	NotifyBusy     = "BUSY=1"     // the worker is handling a request (Net::Server's "processing")
	NotifyIdle     = "BUSY=0"     // the worker waits for a request (Net::Server's "waiting")
	NotifyWatchdog = "WATCHDOG=1" // liveness ping
	NotifyStopping = "STOPPING=1" // the worker leaves on its own
	NotifyStatus   = "STATUS="    // prefix of a free-text status line
	// NotifyRequests is the prefix of REQUESTS=n: the number of requests the
	// worker has begun since it started. The master counts requests from it
	// instead of from BUSY=1 (docs/protocol.md).
	NotifyRequests = "REQUESTS="
)

// MaxNotifySize is the largest notify datagram the master reads; longer ones are dropped and counted.
const MaxNotifySize = 4096
