package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The values of the enumerated keys.
var (
	registryTypes    = []string{"sqlite", "postgres"}
	processBackends  = []string{"pump", "portable"}
	logTargets       = []string{"file", "syslog", "stderr"}
	logFormats       = []string{"text", "json"}
	logLevels        = []string{"trace", "debug", "info", "warn", "error"}
	workerTypes      = []string{TypeSimple, TypeNotify}
	notifyAccesses   = []string{NotifyAccessMain, NotifyAccessAll}
	builtins         = []string{"queue"}
	encodings        = []string{"json", "json+gzip"}
	syslogFacilities = []string{
		"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
		"authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
	}
)

// netServerLevels maps Net::Server's log_level 0-4 to nsfd's levels.
var netServerLevels = []string{"error", "warn", "info", "info", "debug"}

// parseLogLevel reads a level name or Net::Server's 0-4.
func parseLogLevel(s string) (string, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < len(netServerLevels) {
		return netServerLevels[n], nil
	}
	switch l := strings.ToLower(s); l {
	case "warning":
		return "warn", nil
	case "err":
		return "error", nil
	default:
		for _, name := range logLevels {
			if l == name {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("%q is not %s (or Net::Server's 0-4)", s, orList(logLevels))
}

// checkHostPort validates a host:port with a numeric port.
func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || !isDigits(port) || n > 65535 {
		return fmt.Errorf("%q: port must be a number 0-65535", v)
	}
	return nil
}

// checkSyslogAddr validates udp://host:port, tcp://host:port or unix:///path.
func checkSyslogAddr(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Opaque != "" {
		return fmt.Errorf("%q: the scheme must be udp, tcp or unix", v)
	}
	switch u.Scheme {
	case "udp", "tcp":
		if u.Path != "" || u.RawQuery != "" || checkHostPort(u.Host) != nil {
			return fmt.Errorf("%q: %s needs a host and a numeric port", v, u.Scheme)
		}
	case "unix", "unixgram":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return fmt.Errorf("%q: %s needs an absolute path", v, u.Scheme)
		}
	default:
		return fmt.Errorf("%q: the scheme must be udp, tcp or unix", v)
	}
	return nil
}

// validateMaster checks the rules between the keys of nsfd.ini.
func validateMaster(m *Master, l *keyLoader, dsn *entry) Errors {
	var errs Errors
	at := func(section, key, msg string) {
		errs = append(errs, &Error{File: l.path, Line: l.line(section, key), Key: key, Msg: msg})
	}
	if m.Registry.Heartbeat <= 0 && l.line("registry", "heartbeat") > 0 {
		at("registry", "heartbeat", "must be positive")
	}
	switch m.Registry.Type {
	case "postgres":
		switch {
		case dsn == nil:
			at("registry", "type", "postgres needs a dsn in [registry]")
		case !isPostgresDSN(dsn.Value):
			at("registry", "dsn", fmt.Sprintf("%q is not a PostgreSQL URL (postgres://user@host/db) or key=value string", redactDSN(dsn.Value)))
		}
	case "sqlite":
		if dsn != nil && isPostgresDSN(dsn.Value) {
			at("registry", "dsn", "a PostgreSQL DSN with type sqlite (set type = postgres)")
		}
	}
	return errs
}

// isPostgresDSN tells a PostgreSQL URL or key=value connection string.
func isPostgresDSN(s string) bool {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		_, err := url.Parse(s)
		return err == nil
	}
	return pgKeyValue.MatchString(s)
}

// pgKeyValue matches a libpq key=value connection string.
var pgKeyValue = regexp.MustCompile(`^\s*[a-z_]+\s*=\s*\S`)

// redactDSN hides a password in a DSN, which must never reach a log.
func redactDSN(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	s = urlPassword.ReplaceAllString(s, "${1}xxxxx@")
	return pgPassword.ReplaceAllString(s, "password=xxxxx")
}

// urlPassword and pgPassword match the password of a URL that does not
// parse and of a key=value connection string.
var (
	urlPassword = regexp.MustCompile(`(://[^:/@]*:)[^@]*@`)
	pgPassword  = regexp.MustCompile(`password\s*=\s*\S+`)
)

// poolRule is one of Net::Server::PreFork's rules between two pool sizes.
type poolRule struct {
	a, b string // key names; a is the subject of the message
	ok   func(a, b int) bool
	rel  string // what a must be to b
}

var poolRules = []poolRule{
	{"min_servers", "max_servers", func(a, b int) bool { return a <= b }, "must not be greater than"},
	{"min_spare_servers", "min_servers", func(a, b int) bool { return a <= b }, "must not be greater than"},
	{"min_spare_servers", "max_spare_servers", func(a, b int) bool { return a <= b }, "must not be greater than"},
	{"max_spare_servers", "max_servers", func(a, b int) bool { return a < b }, "must be less than"},
}

// validateDaemon checks the rules between the keys of a daemon file. An
// error about a rule between two keys points to the line of the first if
// it is set, else of the second; a key not set has its default, and the
// message says so.
func validateDaemon(d *Daemon, l *keyLoader) Errors {
	var errs Errors
	at := func(key, msg string) {
		errs = append(errs, &Error{File: l.path, Line: l.line("", key), Key: key, Msg: msg})
	}
	deriveSpares(d, l.line("", "min_spare_servers") != 0, l.line("", "max_spare_servers") != 0)
	pool := map[string]int{
		"min_servers":       d.MinServers,
		"max_servers":       d.MaxServers,
		"min_spare_servers": d.MinSpareServers,
		"max_spare_servers": d.MaxSpareServers,
	}
	show := func(key string) string {
		if l.line("", key) == 0 {
			if key == "min_spare_servers" || key == "max_spare_servers" {
				return fmt.Sprintf("%s (%d, derived from min_servers and max_servers)", key, pool[key])
			}
			return fmt.Sprintf("%s (%d, the default)", key, pool[key])
		}
		return fmt.Sprintf("%s (%d)", key, pool[key])
	}
	if d.MinServers < 0 {
		at("min_servers", "must not be negative")
	}
	if d.MinServers > 0 && d.IdleTimeout > 0 {
		at("idle_timeout", "applies to a daemon started on demand only (min_servers = 0)")
	}
	if d.MaxServers > MaxServersLimit {
		at("max_servers", fmt.Sprintf("%d is more than the limit of %d", d.MaxServers, MaxServersLimit))
	}
	for _, r := range poolRules {
		if r.ok(pool[r.a], pool[r.b]) {
			continue
		}
		if d.MinServers == 0 && r.a == "min_spare_servers" && r.b == "min_servers" {
			continue // on demand: the spares apply once a connection woke it
		}
		key := r.a
		if l.line("", key) == 0 {
			key = r.b
		}
		at(key, fmt.Sprintf("%s %s %s", show(r.a), r.rel, show(r.b)))
	}

	if d.ReadyTimeout <= 0 {
		at("ready_timeout", "must be positive")
	}
	if d.BackoffMax <= 0 {
		at("backoff_max", "must be positive")
	}
	if d.BackoffInitial > d.BackoffMax {
		key := "backoff_initial"
		if l.line("", key) == 0 {
			key = "backoff_max"
		}
		at(key, fmt.Sprintf("backoff_initial (%s) must not be greater than backoff_max (%s)", d.BackoffInitial, d.BackoffMax))
	}

	switch {
	case d.Builtin != "" && len(d.Command) > 0:
		at("builtin", "set either command or builtin, not both")
	case d.Builtin == "" && len(d.Command) == 0 && l.line("", "command") == 0 && l.line("", "builtin") == 0:
		errs = append(errs, &Error{File: l.path, Msg: "no command", Hint: `set "command" or "builtin"`, Err: ErrNoCommand})
	}
	if len(d.Listeners) == 0 && d.Builtin == "" && l.line("", "port") == 0 && l.line("", "builtin") == 0 {
		errs = append(errs, &Error{File: l.path, Msg: "no port", Hint: `set "port", e.g. port = 127.0.0.1:7001`})
	}
	validateHealth(d, at, func(key string) bool { return l.line("", key) != 0 })
	for _, r := range d.Requires {
		if r == d.Name {
			at("requires", fmt.Sprintf("daemon %q requires itself", r))
		}
	}
	return errs
}

// daemonName matches a valid daemon name.
var daemonName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// checkDaemonName says what is wrong with a daemon name, or "".
func checkDaemonName(name string) string {
	if daemonName.MatchString(name) {
		return ""
	}
	return fmt.Sprintf("%q is not a valid daemon name (letters, digits, and . _ - after the first; at most 64)", name)
}
