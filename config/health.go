package config

import (
	"fmt"
	"strings"
	"time"
)

// Defaults of the health-check keys.
const (
	// DefaultHealthInterval is the time between the end of one health
	// check and the start of the next: a daemon gone bad is marked
	// unhealthy within about interval + timeout and rolled after
	// health_failures of them (30 s with the defaults), at a cost of one
	// request every 10 s.
	DefaultHealthInterval = 10 * time.Second
	// DefaultHealthTimeout bounds one check: a local request that takes
	// longer is as bad as none.
	DefaultHealthTimeout = 2 * time.Second
	// DefaultHealthFailures is how many checks in a row must fail before
	// the workers are rolled: one slow answer is not a reason to.
	DefaultHealthFailures = 3
)

// Health-check kinds: the prefix of a `health` value.
const (
	HealthHTTP = "http"
	HealthExec = "exec"
)

// HealthCheck is a daemon's health check: `health`, `health_interval`,
// `health_timeout` and `health_failures`. The zero value (Kind "") is no
// check.
type HealthCheck struct {
	Kind     string   // HealthHTTP, HealthExec, or "" (none)
	Path     string   // http: the path and query asked for with GET ("/healthz")
	Command  []string // exec: argv, split like command, never run through a shell
	Interval time.Duration
	Timeout  time.Duration
	Failures int // consecutive failures before the workers are rolled
}

// Enabled reports whether a check is configured.
func (h HealthCheck) Enabled() bool { return h.Kind != "" }

// String is the check as written: "http:/healthz", "exec:/bin/check --x".
func (h HealthCheck) String() string {
	switch h.Kind {
	case HealthHTTP:
		return HealthHTTP + ":" + h.Path
	case HealthExec:
		return HealthExec + ":" + strings.Join(h.Command, " ")
	}
	return ""
}

func defaultHealth() HealthCheck {
	return HealthCheck{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Failures: DefaultHealthFailures}
}

// applyHealth sets one of the health-check keys.
func (l *daemonLoader) applyHealth(e entry) {
	h := &l.d.Health
	switch e.Key {
	case "health":
		kind, rest, ok := strings.Cut(e.Value, ":")
		switch {
		case !ok:
			l.fail(e, fmt.Sprintf("%q: want http:/PATH or exec:PROGRAM ARGS", e.Value))
		case kind == HealthHTTP:
			if msg := checkHealthPath(rest); msg != "" {
				l.fail(e, msg)
				return
			}
			h.Kind, h.Path = HealthHTTP, rest
		case kind == HealthExec:
			cmd := e
			cmd.Value = rest
			if argv, ok := l.hookCommand(cmd, l.d.Dir); ok {
				h.Kind, h.Command = HealthExec, argv
			}
		default:
			l.fail(e, fmt.Sprintf("unknown kind %q (want http:/PATH or exec:PROGRAM ARGS)", kind))
		}
	case "health_interval":
		l.duration(e, &h.Interval)
	case "health_timeout":
		l.duration(e, &h.Timeout)
	case "health_failures":
		l.count(e, &h.Failures)
	}
}

// checkHealthPath says what is wrong with the path of an http check, or "".
func checkHealthPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("path %q must start with a slash", p)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f {
			return fmt.Sprintf("path %q holds a blank or a control character (escape it: %%20)", p)
		}
	}
	return ""
}

// validateHealth checks the health keys against each other and the
// listeners.
func validateHealth(d *Daemon, at func(key, msg string), set func(key string) bool) {
	h := d.Health
	if !h.Enabled() {
		for _, k := range []string{"health_interval", "health_timeout", "health_failures"} {
			if set(k) {
				at(k, "applies only with a health check (set health = http:/PATH or exec:PROGRAM ARGS)")
			}
		}
		return
	}
	if h.Interval <= 0 {
		at("health_interval", "must be positive")
	}
	if h.Timeout <= 0 {
		at("health_timeout", "must be positive")
	}
	if h.Failures < 1 {
		at("health_failures", "must be at least 1")
	}
	if h.Kind != HealthHTTP {
		return
	}
	stream := false
	for _, l := range d.Listeners {
		stream = stream || l.Proto == ProtoTCP || l.Proto == ProtoUnix
	}
	switch {
	case !stream && len(d.Listeners) > 0:
		at("health", "an http check needs a tcp or unix listener; this daemon has none (use exec:)")
	case d.TLSClientCA != "":
		at("health", "an http check cannot present a client certificate, which tls_client_ca asks for (use exec:)")
	}
}
