package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/ini.v1"
)

// Which file a key belongs to, KeyDoc.File.
const (
	FileMaster = MasterFileName // etc/nsfd.ini
	FileDaemon = "NAME.ini"     // a daemon file, etc/NAME.ini or etc/NAME.conf
)

// EnvSection is the section of a daemon file that holds environment variables.
const EnvSection = "env"

// KeyDoc describes one configuration key. Keys is the single source of the
// known keys: the unknown-key check, the typo hints and docs/config.md all
// come from it.
type KeyDoc struct {
	File    string // FileMaster or FileDaemon
	Section string // "" for a daemon file's default section
	Name    string // "*" for any name (the [env] section)
	Default string // rendered default; empty when there is none
	Doc     string // one line; for an Ignored key, why it is ignored
	Repeat  bool   // may be given more than once
	Ignored bool   // a Net::Server key that loads with a warning
}

func itoa(n int) string { return strconv.Itoa(n) }

// Keys lists every key nsfd knows, in the order docs/config.md shows them.
var Keys = []KeyDoc{
	{File: FileMaster, Section: "nsfd", Name: "node_name", Default: "the host name", Doc: "name of this host in the registry"},
	{File: FileMaster, Section: "nsfd", Name: "cgroup_root", Default: "", Doc: "cgroup2 directory the master makes its control groups in (one per master pid); empty: detected — the unit's own group under systemd (Delegate=yes), else the cgroup2 hierarchy's nsfd/"},
	{File: FileMaster, Section: "nsfd", Name: "run_dir", Default: DefaultRunDir, Doc: "directory for the control socket, notify sockets and default UNIX listeners"},
	{File: FileMaster, Section: "nsfd", Name: "control_socket", Default: "RUN_DIR/" + DefaultControlSocketName, Doc: "UNIX socket of the control API (`nsfd status`, `reload`, ...)"},
	{File: FileMaster, Section: "nsfd", Name: "control_group", Doc: "group allowed on the control socket (mode 0660); empty: owner only (0600)"},
	{File: FileMaster, Section: "nsfd", Name: "metrics_addr", Doc: "host:port to serve metrics over HTTP; empty: metrics only on the control socket"},
	{File: FileMaster, Section: "nsfd", Name: "process_backend", Default: "pump on Linux, portable elsewhere", Doc: "how workers are started and watched: `pump` (Linux: pidfd, epoll, parent-death signal) or `portable` (any unix: kqueue or SIGCHLD, a keeper process); the environment variable NSFD_PROCESS_BACKEND overrides it"},
	{File: FileMaster, Section: "nsfd", Name: "http_addr", Doc: "host:port of the web status page (also at /ui/ on the control socket); a non-loopback address needs `http_users`"},
	{File: FileMaster, Section: "nsfd", Name: "http_tls_cert", Doc: "certificate (PEM) to serve the web page over HTTPS, with `http_tls_key`"},
	{File: FileMaster, Section: "nsfd", Name: "http_tls_key", Doc: "private key (PEM) of `http_tls_cert`"},
	{File: FileMaster, Section: "nsfd", Name: "http_users", Doc: "who may use the web page on `http_addr`: a tokens file, USER:BCRYPT[:COMMANDS] a line (`nsfd token USER`); COMMANDS `view` reads only"},

	{File: FileMaster, Section: "registry", Name: "type", Default: DefaultRegistryType, Doc: "`sqlite` (one host) or `postgres` (many hosts sharing one registry)"},
	{File: FileMaster, Section: "registry", Name: "dsn", Default: DefaultRegistryDSN, Doc: "SQLite file (relative to etc/) or a PostgreSQL URL / key=value string"},
	{File: FileMaster, Section: "registry", Name: "heartbeat", Default: DefaultHeartbeat.String(), Doc: "how often the master refreshes its daemons' heartbeat"},

	{File: FileMaster, Section: "log", Name: "target", Default: DefaultLogTarget, Doc: "`file`, `syslog` or `stderr`"},
	{File: FileMaster, Section: "log", Name: "file", Default: DefaultLogFile, Doc: "central log file, for target = file"},
	{File: FileMaster, Section: "log", Name: "format", Default: DefaultLogFormat, Doc: "`text` or `json`"},
	{File: FileMaster, Section: "log", Name: "level", Default: DefaultLogLevel, Doc: "`trace`, `debug`, `info`, `warn` or `error`; Net::Server's 0-4 map to error, warn, info, info, debug"},
	{File: FileMaster, Section: "log", Name: "max_size", Default: "0", Doc: "rotate the log file at this size: bytes, or with K, M, G (KiB, MiB, GiB; all powers of 1024); 0: never"},
	{File: FileMaster, Section: "log", Name: "max_files", Default: "0", Doc: "rotated log files kept"},
	{File: FileMaster, Section: "log", Name: "syslog_addr", Doc: "empty: the local syslog socket; or `udp://host:port`, `tcp://host:port`, `unix:///path`"},
	{File: FileMaster, Section: "log", Name: "syslog_ident", Default: DefaultSyslogIdent, Doc: "syslog tag"},
	{File: FileMaster, Section: "hooks", Name: "on_fatal", Doc: "command run when any daemon goes fatal (after the daemon's own `on_fatal`); see docs/config.md#hooks"},
	{File: FileMaster, Section: "hooks", Name: "on_restart", Doc: "command run when a worker of any daemon exits unplanned and is replaced"},
	{File: FileMaster, Section: "hooks", Name: "on_recover", Doc: "command run when any daemon runs again after it was fatal or backing off"},
	{File: FileMaster, Section: "hooks", Name: "timeout", Default: DefaultHookTimeout.String(), Doc: "a hook still running after this is killed"},
	{File: FileMaster, Section: "hooks", Name: "max_concurrent", Default: itoa(DefaultHookConcurrency), Doc: "hooks running at once; others wait in a queue of 64, and past it are dropped (and logged)"},
	{File: FileMaster, Section: "log", Name: "syslog_facility", Default: DefaultSyslogFacility, Doc: "syslog facility: `daemon`, `user`, `local0`...`local7`, ..."},

	{File: FileDaemon, Name: "command", Doc: "the worker's argv, split like a POSIX shell would (quotes, backslashes) but never run through one; a program path with a slash is relative to the file; no comment on its line; required unless `builtin` is set"},
	{File: FileDaemon, Name: "builtin", Doc: "a worker built into nsfd instead of a command: `queue`"},
	{File: FileDaemon, Name: "daemon_name", Default: "the file name without extension", Doc: "the daemon's name in the registry"},
	{File: FileDaemon, Name: "port", Repeat: true, Doc: "a listener, Net::Server syntax: `host:port[/proto][/IPv4|/IPv6]`, `[::1]:80`, `7001`, `/path.sock|unix`; repeatable; at least one unless `builtin` is set (a builtin gets RUN_DIR/NAME.sock)"},
	{File: FileDaemon, Name: "host", Default: "*", Doc: "host of a `port` that names none; `*`: all addresses"},
	{File: FileDaemon, Name: "proto", Default: ProtoTCP, Doc: "protocol of a `port` that names none: `tcp`, `udp`, `unix` or `unixdgram`"},
	{File: FileDaemon, Name: "ipv", Default: "*", Doc: "address family of a `port` that names none: `4`, `6` or `*` (both)"},
	{File: FileDaemon, Name: "listen", Default: itoa(DefaultListenBacklog), Doc: "listen backlog of each socket"},
	{File: FileDaemon, Name: "socket_mode", Default: "0" + strconv.FormatUint(uint64(DefaultSocketMode), 8), Doc: "mode (octal) of UNIX socket files"},
	{File: FileDaemon, Name: "type", Default: DefaultType, Doc: "`simple` (ready once started) or `notify` (ready after READY=1)"},
	{File: FileDaemon, Name: "min_servers", Default: itoa(DefaultMinServers), Doc: "workers kept running at least; 0: started on demand, at the first connection (see `idle_timeout`)"},
	{File: FileDaemon, Name: "max_servers", Default: itoa(DefaultMaxServers), Doc: "workers running at most; never more than " + itoa(MaxServersLimit) + ", in the file or through `nsfd scale` and SIGTTIN"},
	{File: FileDaemon, Name: "min_spare_servers", Default: "min(" + itoa(DefaultMinSpareServers) + ", min_servers, max_spare_servers)", Doc: "idle workers wanted at least (≤ min_servers, ≤ max_spare_servers); unset, derived from the pool so that any valid min_servers/max_servers pair is valid"},
	{File: FileDaemon, Name: "max_spare_servers", Default: "min(" + itoa(DefaultMaxSpareServers) + ", max_servers - 1)", Doc: "idle workers kept at most (< max_servers); unset, derived from max_servers (and raised to an explicit min_spare_servers that fits)"},
	{File: FileDaemon, Name: "max_requests", Default: itoa(DefaultMaxRequests), Doc: "requests a worker serves before it is replaced; 0: unlimited"},
	{File: FileDaemon, Name: "max_requests_jitter", Default: "0", Doc: "up to this many requests added at random to max_requests, so workers do not all retire at once"},
	{File: FileDaemon, Name: "min_child_ttl", Default: DefaultMinChildTTL.String(), Doc: "a surplus idle worker is not retired sooner than this after a spawn; and a pool that has had no busy worker for this long is trimmed to min_spare_servers idle ones (never below min_servers), where Net::Server::PreFork waits 30s without a request"},
	{File: FileDaemon, Name: "ready_timeout", Default: DefaultReadyTimeout.String(), Doc: "time a new worker has to become ready"},
	{File: FileDaemon, Name: "graceful_timeout", Default: DefaultGracefulTimeout.String(), Doc: "time between SIGTERM and SIGKILL when a worker stops"},
	{File: FileDaemon, Name: "start_seconds", Default: DefaultStartPeriod.String(), Doc: "a worker that exits sooner counts as a failed start"},
	{File: FileDaemon, Name: "start_retries", Default: itoa(DefaultStartRetries), Doc: "consecutive failed starts before the daemon goes fatal"},
	{File: FileDaemon, Name: "backoff_initial", Default: DefaultBackoffInitial.String(), Doc: "first delay before restarting after a failed start; doubles each time"},
	{File: FileDaemon, Name: "backoff_max", Default: DefaultBackoffMax.String(), Doc: "longest delay between restarts"},
	{File: FileDaemon, Name: "memory_max", Default: "0", Doc: "memory of all the daemon's workers and what they start, together (K, M, G); the kernel's OOM killer acts at it; 0: no limit. Needs control groups"},
	{File: FileDaemon, Name: "memory_high", Default: "0", Doc: "memory above which the daemon is throttled and reclaimed (cgroup v1: the soft limit); at most memory_max; 0: no limit"},
	{File: FileDaemon, Name: "pids_max", Default: "0", Doc: "processes and threads of all the daemon's workers together: a fork bomb stops there; 0: no limit"},
	{File: FileDaemon, Name: "cpu_weight", Default: "0", Doc: "share of CPU time under contention, 1-10000 (100: the default); 0: unset. Only a daemon with cpu_weight or cpu_max is put in a cpu control group (a cpu group costs every wakeup of its processes)"},
	{File: FileDaemon, Name: "cpu_max", Default: "0", Doc: "CPU time of all the daemon's workers together, as a share of one CPU: 50% is half of one, 200% two; 0: no limit"},
	{File: FileDaemon, Name: "max_rss", Default: "0", Doc: "a worker whose memory stays above this is replaced gracefully, like max_requests (its replacement is ready before it gets SIGTERM); below memory_max; 0: never"},
	{File: FileDaemon, Name: "notify_access", Default: DefaultNotifyAccess, Doc: "who may send a worker's notify messages: `main` (the worker process) or `all` (any process in its tree: its control group, else its descendants; for `systemd-notify --ready` in a shell worker); see docs/protocol.md"},
	{File: FileDaemon, Name: "preload", Default: "false", Doc: "`true`: start the program once as a fork-server that loads the application and forks each worker (copy-on-write memory, no exec per worker; Perl and Python helpers in examples/); needs the `pump` process backend, a `command` (not a builtin) and no `chroot`; see docs/protocol.md"},
	{File: FileDaemon, Name: "watchdog", Default: "0", Doc: "a worker that sends no WATCHDOG=1 for this long is replaced; 0: no watchdog"},
	{File: FileDaemon, Name: "user", Doc: "user the workers run as (name or uid; the master must be root)"},
	{File: FileDaemon, Name: "group", Doc: "group the workers run as (name or gid; the master must be root); alone, the workers keep the master's uid"},
	{File: FileDaemon, Name: "groups", Doc: "supplementary groups (comma or space separated), with `user` or `group`; empty: cleared"},
	{File: FileDaemon, Name: "chroot", Doc: "directory the workers are chrooted into (the master must be root)"},
	{File: FileDaemon, Name: "umask", Default: "inherited", Doc: "umask (octal) of the workers"},
	{File: FileDaemon, Name: "cwd", Default: "the master's", Doc: "working directory of the workers"},
	{File: FileDaemon, Name: "limit_nofile", Default: "inherited", Doc: "RLIMIT_NOFILE: an integer or `unlimited`"},
	{File: FileDaemon, Name: "limit_core", Default: "inherited", Doc: "RLIMIT_CORE (bytes)"},
	{File: FileDaemon, Name: "limit_nproc", Default: "inherited", Doc: "RLIMIT_NPROC"},
	{File: FileDaemon, Name: "limit_as", Default: "inherited", Doc: "RLIMIT_AS (bytes)"},
	{File: FileDaemon, Name: "limit_memlock", Default: "inherited", Doc: "RLIMIT_MEMLOCK (bytes)"},
	{File: FileDaemon, Name: "limit_stack", Default: "inherited", Doc: "RLIMIT_STACK (bytes)"},
	{File: FileDaemon, Name: "limit_fsize", Default: "inherited", Doc: "RLIMIT_FSIZE (bytes)"},
	{File: FileDaemon, Name: "limit_cpu", Default: "inherited", Doc: "RLIMIT_CPU (seconds)"},
	{File: FileDaemon, Name: "env_file", Doc: "file of KEY=VALUE lines (`#` comments, optional `export `, quotes stripped) added to the environment before [env]"},
	{File: FileDaemon, Name: "encoding", Default: DefaultEncoding, Doc: "message encoding clients use: `json` or `json+gzip`"},
	{File: FileDaemon, Name: "tls_cert", Doc: "PEM certificate the workers serve TLS with on every stream listener (the registry records that clients must speak TLS); needs `tls_key`; relative to the file; read by the workers, as their user"},
	{File: FileDaemon, Name: "tls_key", Doc: "PEM private key of `tls_cert`; readable by the workers' user, by no other user"},
	{File: FileDaemon, Name: "tls_client_ca", Doc: "PEM file of CA certificates: mutual TLS, every client must present a certificate one of them signed"},
	{File: FileDaemon, Name: "tokens", Doc: "tokens file (`USER:BCRYPT-HASH[:COMMANDS]` lines, see `nsfd token`): every request must carry a user and its token, checked before the handler (framework daemons: wire.Serve)"},
	{File: FileDaemon, Name: "requires", Doc: "daemons (comma or space separated) this one needs: its workers start once each of them runs (its first worker ready), it waits (state `waiting`) while one is stopped, fatal or missing, and it stops before them"},
	{File: FileDaemon, Name: "after", Doc: "daemons (comma or space separated) started before this one and stopped after it, when configured; ordering only, no dependency"},
	{File: FileDaemon, Name: "idle_timeout", Doc: "with `min_servers = 0` (on demand: no worker until a connection or datagram arrives, which waits in the kernel's backlog), retire the workers back to none after this long without a request (a worker's BUSY=1, or a REQUESTS=n count that moved; worker.Serve, serving many connections at once, reports its count about once a second: keep idle_timeout above that for it); empty: they stay once started"},
	{File: FileDaemon, Name: "fatal_retry", Default: DefaultFatalRetry.String(), Doc: "a fatal daemon tries again after this (its back-off starting over); 0: stays fatal until `nsfd restart`"},
	{File: FileDaemon, Name: "health", Doc: "health check, from the daemon's first READY until it stops: `http:/PATH` (GET over its first tcp or unix listener, https if `tls_cert` is set; healthy on a 2xx within `health_timeout`, which a listener with no worker behind it never gives) or `exec:PROGRAM ARGS` (split like `command`, never through a shell; run as the daemon's user with NSFD_DAEMON, NSFD_ADDRESS and NSFD_LISTENERS in its environment; healthy on exit status 0; killed at `health_timeout`; its output goes to the central log). A failed check marks the daemon unhealthy (status, metrics, and its registry endpoints, which `client` and `nsfd resolve` skip while another node has it healthy); see docs/config.md#health-checks"},
	{File: FileDaemon, Name: "health_interval", Default: DefaultHealthInterval.String(), Doc: "time from the end of one health check to the start of the next"},
	{File: FileDaemon, Name: "health_timeout", Default: DefaultHealthTimeout.String(), Doc: "a health check that has not passed by then failed (an exec check is killed)"},
	{File: FileDaemon, Name: "health_failures", Default: itoa(DefaultHealthFailures), Doc: "health checks failed in a row before the workers are rolled (replacements ready first, as `nsfd restart` does); checks go on, and roll again after as many more"},
	{File: FileDaemon, Name: "on_fatal", Doc: "command run when this daemon goes fatal: split like `command`, never through a shell; NSFD_DAEMON, NSFD_EVENT, NSFD_PID, NSFD_EXIT_STATUS, NSFD_REASON in its environment; its output goes to the central log"},
	{File: FileDaemon, Name: "on_restart", Doc: "command run when a worker exits unplanned (crashed, failed to start, hung) and is replaced"},
	{File: FileDaemon, Name: "on_recover", Doc: "command run when the daemon runs again after it was fatal or backing off"},
	{File: FileDaemon, Section: EnvSection, Name: "*", Doc: "[env] `NAME = value`: an environment variable of the workers; wins over env_file, which wins over the master's own environment (each worker gets one value of a name). `GOMAXPROCS = n` gives each Go worker n cores instead of one (docs/protocol.md)"},

	{File: FileDaemon, Name: "background", Ignored: true, Doc: "the master does not fork into the background; the service manager runs it"},
	{File: FileDaemon, Name: "setsid", Ignored: true, Doc: "the master does not fork into the background; the service manager runs it"},
	{File: FileDaemon, Name: "serialize", Ignored: true, Doc: "workers accept on their own; no accept lock is needed"},
	{File: FileDaemon, Name: "lock_file", Ignored: true, Doc: "workers accept on their own; no accept lock is needed"},
	{File: FileDaemon, Name: "pid_file", Ignored: true, Doc: "the master handles this; see `nsfd status`"},
	{File: FileDaemon, Name: "log_file", Ignored: true, Doc: "workers' output goes to the central log; see [log] in nsfd.ini"},
	{File: FileDaemon, Name: "log_level", Ignored: true, Doc: "the central log's level applies; see [log] in nsfd.ini"},
	{File: FileDaemon, Name: "syslog_ident", Ignored: true, Doc: "the central log applies; see [log] in nsfd.ini"},
	{File: FileDaemon, Name: "syslog_logopt", Ignored: true, Doc: "the central log applies; see [log] in nsfd.ini"},
	{File: FileDaemon, Name: "syslog_facility", Ignored: true, Doc: "the central log applies; see [log] in nsfd.ini"},
	{File: FileDaemon, Name: "check_for_dead", Ignored: true, Doc: "the master learns of exits at once, without polling"},
	{File: FileDaemon, Name: "check_for_waiting", Ignored: true, Doc: "the master reacts to each status message, without polling"},
	{File: FileDaemon, Name: "check_for_spawn", Ignored: true, Doc: "the master reacts to each status message, without polling"},
	{File: FileDaemon, Name: "child_communication", Ignored: true, Doc: "workers report over NOTIFY_SOCKET"},
	{File: FileDaemon, Name: "leave_children_open_on_hup", Ignored: true, Doc: "a reload rolls the workers gracefully"},
	{File: FileDaemon, Name: "node_name", Ignored: true, Doc: "the node name is set in nsfd.ini"},
	{File: FileDaemon, Name: "no_close_by_child", Ignored: true, Doc: "the master handles this"},
}

// lookupKey returns the KeyDoc of name in section of file, or nil.
func lookupKey(file, section, name string) *KeyDoc {
	for i := range Keys {
		k := &Keys[i]
		if k.File == file && k.Section == section && (k.Name == name || k.Name == "*") {
			return k
		}
	}
	return nil
}

// sections returns the sections of file that hold keys, in table order.
func sections(file string) []string {
	var out []string
	for _, k := range Keys {
		if k.File == file && !slices.Contains(out, k.Section) {
			out = append(out, k.Section)
		}
	}
	return out
}

// checkKeys holds a file's entries against the key table. It reports
// unknown sections, unknown keys and keys set more than once that may not
// repeat, turns ignored Net::Server keys into warnings, and returns the
// entries of the keys to apply, in file order. An entry with an empty value
// is left out, so the key keeps its default; in [env] it sets an empty value.
func checkKeys(rf *rawFile, file string) (known []entry, warnings, errs Errors) {
	secs := sections(file)
	for _, h := range rf.Headers {
		if !slices.Contains(secs, h.Name) || h.Name == "" && file == FileMaster {
			errs = append(errs, unknownSection(rf.Path, h.Line, h.Name, file))
		}
	}
	first := map[string]int{}
	for _, e := range rf.Entries {
		if !slices.Contains(secs, e.Section) && e.Section != "" {
			continue // reported with its header
		}
		k := lookupKey(file, e.Section, e.Key)
		if k == nil {
			errs = append(errs, unknownKey(rf.Path, e, file))
			continue
		}
		id := e.Section + "." + e.Key
		if line, dup := first[id]; dup && !k.Repeat {
			errs = append(errs, &Error{File: rf.Path, Line: e.Line, Key: e.Key,
				Msg: fmt.Sprintf("set more than once (first on line %d)", line)})
			continue
		}
		first[id] = e.Line
		if k.Ignored {
			warnings = append(warnings, &Error{File: rf.Path, Line: e.Line, Key: e.Key, Msg: "ignored under nsfd: " + k.Doc})
			continue
		}
		if e.Value != "" || k.Name == "*" {
			known = append(known, e)
		}
	}
	return known, warnings, errs
}

// unknownKey builds the error for a key the table does not know, with the
// nearest known key of the same section as a hint, or else the section the
// key belongs in.
func unknownKey(path string, e entry, file string) *Error {
	err := &Error{File: path, Line: e.Line, Key: e.Key, Msg: "unknown key"}
	if file == FileMaster {
		if e.Section == "" {
			err.Msg = "key outside a section"
		} else {
			err.Msg = "unknown key in [" + e.Section + "]"
		}
	}
	var names []string
	for _, k := range Keys {
		if k.File == file && k.Section == e.Section && k.Name != "*" {
			names = append(names, k.Name)
		}
	}
	if s := nearest(e.Key, names); s != "" {
		err.Hint = "did you mean " + strconv.Quote(s) + "?"
		return err
	}
	for _, k := range Keys {
		if k.File == file && k.Name == e.Key && k.Section != e.Section {
			if k.Section == "" {
				err.Hint = "it belongs before any section"
			} else {
				err.Hint = "it belongs in [" + k.Section + "]"
			}
			return err
		}
	}
	return err
}

// unknownSection builds the error for a section header the table does not know.
func unknownSection(path string, line int, name, file string) *Error {
	shown := name
	if shown == "" {
		shown = ini.DefaultSection
	}
	err := &Error{File: path, Line: line, Msg: "unknown section [" + shown + "]"}
	var names []string
	for _, s := range sections(file) {
		if s != "" {
			names = append(names, s)
		}
	}
	if s := nearest(name, names); s != "" {
		err.Hint = "did you mean [" + s + "]?"
	}
	return err
}

// nearest returns the candidate closest to s by edit distance (ignoring
// case) if it is close enough to be a likely typo, else a candidate that s
// is a prefix of or that is a prefix of s; else "".
func nearest(s string, candidates []string) string {
	best, bestD := "", 0
	ls := strings.ToLower(strings.TrimSpace(s))
	if len(ls) > 64 {
		return "" // no key is that long; spare the quadratic distance
	}
	for _, c := range candidates {
		d := levenshtein(ls, strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	limit := 2
	if n := len([]rune(best)); n <= 4 {
		limit = 1
	}
	if bestD <= limit {
		return best
	}
	// A prefix: "node" for "node_name", "environment" for "env".
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if len(ls) >= 3 && len(lc) >= 3 && (strings.HasPrefix(lc, ls) || strings.HasPrefix(ls, lc)) {
			return c
		}
	}
	return ""
}

// levenshtein is the edit distance between a and b, by runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
