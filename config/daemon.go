package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// LoadDaemon reads one daemon file, INI or Net::Server conf. m provides the
// run directory (for a builtin's default socket); nil means the defaults of
// the file's directory. The daemon is named after the file (without its
// extension) unless daemon_name is set. The error is Errors: every problem
// found in the file, each with its line.
func LoadDaemon(path string, m *Master) (*Daemon, error) {
	d, errs, _ := loadDaemon(path, m, CurrentUser())
	if len(errs) > 0 {
		return nil, errs
	}
	return d, nil
}

// nameFromFile is the daemon name a file gives when daemon_name is not set.
func nameFromFile(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// newDaemon is a Daemon with every default.
func newDaemon(name, file string) *Daemon {
	return &Daemon{
		Name:            name,
		File:            file,
		Dir:             filepath.Dir(file),
		Backlog:         DefaultListenBacklog,
		SocketMode:      DefaultSocketMode,
		Type:            DefaultType,
		NotifyAccess:    DefaultNotifyAccess,
		MinServers:      DefaultMinServers,
		MaxServers:      DefaultMaxServers,
		MinSpareServers: DefaultMinSpareServers,
		MaxSpareServers: DefaultMaxSpareServers,
		MaxRequests:     DefaultMaxRequests,
		MinChildTTL:     DefaultMinChildTTL,
		ReadyTimeout:    DefaultReadyTimeout,
		GracefulTimeout: DefaultGracefulTimeout,
		StartPeriod:     DefaultStartPeriod,
		StartRetries:    DefaultStartRetries,
		FatalRetry:      DefaultFatalRetry,
		Health:          defaultHealth(),
		BackoffInitial:  DefaultBackoffInitial,
		BackoffMax:      DefaultBackoffMax,
		Umask:           -1,
		Creds:           Creds{UID: -1, GID: -1},
		Encoding:        DefaultEncoding,
	}
}

// loadDaemon is LoadDaemon for a master running as as, returning what it
// could make of a broken file along with the errors (the name is always
// set), and the line of each key that is set (".key").
func loadDaemon(path string, m *Master, as RunAs) (*Daemon, Errors, map[string]int) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	d := newDaemon(nameFromFile(path), abs)
	if m == nil {
		m = defaultMaster(d.Dir)
	}
	data, err := readFile(path, as)
	if err != nil {
		return d, Errors{readError(path, err)}, nil
	}
	rf, errs := parseFile(path, data, isConfFormat(path, data))
	if len(errs) > 0 {
		return d, errs, nil
	}
	known, warns, errs := checkKeys(rf, FileDaemon)
	d.Warnings = warns
	l := &daemonLoader{keyLoader: keyLoader{path: path, errs: errs, lines: map[string]int{}}, d: d, m: m, as: as}
	for _, e := range known {
		l.apply(e)
	}
	l.finish()
	l.errs = append(l.errs, validateDaemon(d, &l.keyLoader)...)
	sortErrors(l.errs)
	d.Hash = d.hash()
	return d, l.errs, l.lines
}

// daemonLoader applies the entries of one daemon file.
type daemonLoader struct {
	keyLoader
	d  *Daemon
	m  *Master
	as RunAs

	ports      []entry
	host       string
	proto      string
	ipv        int
	envFile    *entry
	env        []entry
	hostFailed bool              // host, proto or ipv is invalid: ports are not parsed
	secure     map[string]string // the secured-call keys' values as written (tls.go)
}

// apply sets the field of one entry of the default section or [env].
func (l *daemonLoader) apply(e entry) {
	d, v := l.d, e.Value
	if e.Section == EnvSection {
		l.env = append(l.env, e)
		return
	}
	if _, set := l.lines["."+e.Key]; !set {
		l.lines["."+e.Key] = e.Line
	}
	switch e.Key {
	case "command":
		argv, err := splitCommand(v)
		cut := droppedComment(e)
		switch {
		case cut != "":
			l.failHint(e, fmt.Sprintf("%q would be dropped as a comment: in an INI value a blank followed by \";\" or \"#\" starts one", cut),
				"put a comment on a line of its own; to give the program a \";\" or \"#\" after a blank, write the whole value in backquotes: command = `...`")
		case err != nil:
			l.fail(e, err.Error())
		case len(argv) == 0:
			l.fail(e, "empty command")
		case argv[0] == "":
			l.fail(e, "empty program name")
		default:
			if strings.Contains(argv[0], "/") {
				argv[0] = resolve(d.Dir, argv[0])
			}
			d.Command = argv
		}
	case "builtin":
		l.oneOf(e, &d.Builtin, builtins)
	case "daemon_name":
		if msg := checkDaemonName(v); msg != "" {
			l.fail(e, msg)
		} else {
			d.Name = v
		}
	case "port":
		l.ports = append(l.ports, e)
	case "host":
		if err := checkHost(v); err != nil {
			l.fail(e, err.Error())
			l.hostFailed = true
		}
		l.host = v
	case "proto":
		p := strings.ToLower(v)
		switch {
		case isTLSProto(p):
			l.fail(e, fmt.Sprintf("proto %q is not supported, terminate TLS in the worker", v))
			l.hostFailed = true
		case !isProto(p):
			l.fail(e, fmt.Sprintf("unknown proto %q (want tcp, udp, unix or unixdgram)", v))
			l.hostFailed = true
		}
		l.proto = p
	case "ipv":
		n, err := parseIPv(v)
		if err != nil {
			l.fail(e, err.Error())
			l.hostFailed = true
		}
		l.ipv = n
	case "listen":
		l.count(e, &d.Backlog)
		if d.Backlog == 0 {
			l.fail(e, "must be at least 1")
		}
	case "socket_mode":
		if n, err := parseMode(v); err != nil {
			l.fail(e, err.Error())
		} else {
			d.SocketMode = fs.FileMode(n)
		}
	case "type":
		l.oneOf(e, &d.Type, workerTypes)
	case "notify_access":
		l.oneOf(e, &d.NotifyAccess, notifyAccesses)
	case "min_servers":
		l.count(e, &d.MinServers)
	case "max_servers":
		l.count(e, &d.MaxServers)
	case "min_spare_servers":
		l.count(e, &d.MinSpareServers)
	case "max_spare_servers":
		l.count(e, &d.MaxSpareServers)
	case "max_requests":
		l.count(e, &d.MaxRequests)
	case "max_requests_jitter":
		l.count(e, &d.MaxRequestsJitter)
	case "min_child_ttl":
		l.duration(e, &d.MinChildTTL)
	case "ready_timeout":
		l.duration(e, &d.ReadyTimeout)
	case "graceful_timeout":
		l.duration(e, &d.GracefulTimeout)
	case "start_seconds":
		l.duration(e, &d.StartPeriod)
	case "start_retries":
		l.count(e, &d.StartRetries)
	case "backoff_initial":
		l.duration(e, &d.BackoffInitial)
	case "backoff_max":
		l.duration(e, &d.BackoffMax)
	case "watchdog":
		l.duration(e, &d.Watchdog)
	case "preload":
		l.boolean(e, &d.Preload)
	case "user":
		d.User = v
	case "group":
		d.Group = v
	case "groups":
		d.Groups = splitList(v)
	case "chroot":
		d.Chroot = resolve(d.Dir, v)
	case "umask":
		if n, err := parseMode(v); err != nil {
			l.fail(e, err.Error())
		} else {
			d.Umask = n
		}
	case "cwd":
		d.Cwd = resolve(d.Dir, v)
	case "limit_nofile", "limit_core", "limit_nproc", "limit_as",
		"limit_memlock", "limit_stack", "limit_fsize", "limit_cpu":
		n, err := parseLimit(v)
		if err != nil {
			l.fail(e, err.Error())
			break
		}
		if d.Limits == nil {
			d.Limits = map[string]uint64{}
		}
		d.Limits[strings.TrimPrefix(e.Key, "limit_")] = n
	case "env_file":
		l.envFile = &e
	case "encoding":
		l.oneOf(e, &d.Encoding, encodings)
	case "tls_cert", "tls_key", "tls_client_ca", "tokens":
		l.applySecure(e)
	case "memory_max", "memory_high", "pids_max", "cpu_weight", "cpu_max", "max_rss":
		l.applyResource(e)
	case "requires", "after":
		dst := &d.Requires
		if e.Key == "after" {
			dst = &d.After
		}
		for _, r := range splitList(v) {
			if msg := checkDaemonName(r); msg != "" {
				l.fail(e, msg)
			} else if !slices.Contains(*dst, r) {
				*dst = append(*dst, r)
			}
		}
	case "fatal_retry":
		l.duration(e, &d.FatalRetry)
	case "idle_timeout":
		l.duration(e, &d.IdleTimeout)
	case "health", "health_interval", "health_timeout", "health_failures":
		l.applyHealth(e)
	case "on_fatal", "on_restart", "on_recover":
		if argv, ok := l.hookCommand(e, d.Dir); ok {
			if d.Hooks == nil {
				d.Hooks = HookCommands{}
			}
			d.Hooks[strings.TrimPrefix(e.Key, "on_")] = argv
		}
	default:
		l.fail(e, "internal error: no loader for this key")
	}
}

// finish does what depends on several keys: the listeners (port with host,
// proto and ipv) and the environment (env_file, then [env]).
func (l *daemonLoader) finish() {
	d := l.d
	l.checkResources()
	l.checkPreload()
	if l.lines[".daemon_name"] == 0 {
		if msg := checkDaemonName(d.Name); msg != "" {
			l.errs = append(l.errs, &Error{File: l.path, Msg: msg, Hint: "rename the file or set daemon_name"})
		}
	}

	if !l.hostFailed {
		seen := map[string]int{}
		for _, e := range l.ports {
			ln, err := parseListen(e.Value, l.host, l.proto, l.ipv, d.Dir)
			if err != nil {
				l.fail(e, err.Error())
				continue
			}
			id := ln.Network() + " " + ln.Addr
			if first, dup := seen[id]; dup {
				l.fail(e, fmt.Sprintf("%q is listed twice (also on line %d)", e.Value, first))
				continue
			}
			seen[id] = e.Line
			d.Listeners = append(d.Listeners, ln)
		}
	}
	if len(l.ports) == 0 && d.Builtin != "" {
		d.Listeners = []Listen{{Proto: ProtoUnix, Addr: filepath.Join(l.m.RunDir, d.Name+".sock")}}
	}

	if e := l.envFile; e != nil {
		shown := e.Value
		if !filepath.IsAbs(shown) {
			shown = filepath.Join(filepath.Dir(l.path), shown)
		}
		data, err := readFile(resolve(d.Dir, e.Value), l.as)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			l.fail(*e, fmt.Sprintf("%q does not exist", e.Value))
		case err != nil:
			l.fail(*e, fmt.Sprintf("%q: %s", e.Value, readError(shown, err).Msg))
		default:
			env, errs := parseEnvFile(shown, data)
			l.errs = append(l.errs, errs...)
			d.Env = mergeEnv(d.Env, env...)
		}
	}
	for _, e := range l.env {
		if msg := checkEnvName(e.Key); msg != "" {
			l.fail(e, msg)
			continue
		}
		d.Env = mergeEnv(d.Env, e.Key+"="+e.Value)
	}
	if l.resolveCreds() {
		l.checkReach()
		l.checkSecure()
	}
}

// hash is the digest of the effective configuration: every field but File,
// Hash and Warnings.
func (d *Daemon) hash() string {
	sum := sha256.Sum256(d.canonical(false))
	return hex.EncodeToString(sum[:])
}

// canonical renders the configuration for comparison, without File, Hash
// and Warnings, and without the pool sizes when withoutPool is set.
func (d *Daemon) canonical(withoutPool bool) []byte {
	c := *d
	c.File, c.Hash, c.Warnings = "", "", nil
	if withoutPool {
		c.MinServers, c.MaxServers, c.MinSpareServers, c.MaxSpareServers = 0, 0, 0, 0
		c.MaxRequests, c.MaxRequestsJitter, c.MinChildTTL = 0, 0, 0
		c.Health = HealthCheck{} // the checker takes a new check as it is
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic("config: cannot render a Daemon: " + err.Error()) // plain data; cannot happen
	}
	return b
}

// PoolOnlyChange tells whether d differs from old in nothing but the pool
// sizes (min/max servers, min/max spare servers, max_requests and its
// jitter, min_child_ttl) and its health check: a change the running pool applies in place, where
// any other rolls the workers. It is also true when nothing changed at all
// (compare Hash for that), and false when old is nil.
func (d *Daemon) PoolOnlyChange(old *Daemon) bool {
	if d == nil || old == nil {
		return false
	}
	return string(d.canonical(true)) == string(old.canonical(true))
}
