package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/registry"
)

// ConfigItem is one setting of a daemon as the control API shows it.
type ConfigItem struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Masked is what a secret's value shows as.
const Masked = "********"

// secretName matches the environment variables whose values are not shown.
var secretName = regexp.MustCompile(`(?i)pass|secret|token|key|credential|auth|private|dsn`)

// DaemonConfig returns the effective settings of a daemon, secrets masked:
// environment variables whose names say they hold one (PASSWORD, TOKEN,
// KEY, ...) and passwords in a DSN.
func (s *Supervisor) DaemonConfig(ctx context.Context, name string) ([]ConfigItem, error) {
	var (
		items []ConfigItem
		found bool
	)
	err := s.do(ctx, func(context.Context) {
		if d := s.daemons[name]; d != nil {
			found, items = true, configItems(d.cfg)
		}
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("config of %s: %w", name, ErrNoDaemon)
	}
	return items, nil
}

// configItems lists d's settings in the order docs/config.md gives them.
func configItems(d *config.Daemon) []ConfigItem {
	var out []ConfigItem
	add := func(k, v string) {
		if v != "" {
			out = append(out, ConfigItem{k, v})
		}
	}
	n := strconv.Itoa
	add("file", d.File)
	add("command", strings.Join(d.Command, " "))
	add("builtin", d.Builtin)
	for _, l := range d.Listeners {
		add("port", l.String())
	}
	add("type", d.Type)
	add("min_servers", n(d.MinServers))
	add("max_servers", n(d.MaxServers))
	add("min_spare_servers", n(d.MinSpareServers))
	add("max_spare_servers", n(d.MaxSpareServers))
	if d.MaxRequests > 0 {
		add("max_requests", n(d.MaxRequests))
	}
	add("graceful_timeout", d.GracefulTimeout.String())
	if d.Watchdog > 0 {
		add("watchdog", d.Watchdog.String())
	}
	add("user", d.User)
	add("group", d.Group)
	add("chroot", d.Chroot)
	add("cwd", d.Cwd)
	add("encoding", d.Encoding)
	add("tls_cert", d.TLSCert)
	add("tls_client_ca", d.TLSClientCA)
	add("tokens", d.Tokens)
	for _, kv := range d.Env {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, ConfigItem{"env." + k, maskValue(k, v)})
	}
	return out
}

// maskValue is how the environment variable k=v shows: masked when its
// name says it is a secret, a URL's password redacted otherwise.
func maskValue(k, v string) string {
	if secretName.MatchString(k) {
		return Masked
	}
	if strings.Contains(v, "://") && strings.Contains(v, "@") {
		return registry.Redact(v)
	}
	return v
}

func (s *Supervisor) handleConfig(w http.ResponseWriter, r *http.Request) {
	items, err := s.DaemonConfig(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, errorCode(err), err)
		return
	}
	writeJSON(w, http.StatusOK, items)
}
