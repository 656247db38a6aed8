package supervisor

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nsfd/nsfd/config"
)

// nsfd.ini on reload. The master reads its own settings once, at start; a
// reload that finds them changed applies them by re-executing the running
// binary in place, as an upgrade does (same pid, workers and listeners
// kept), except those that cannot change under running workers, which
// stay as they are and are reported (ReloadResult.Master, Status) until
// nsfd is stopped and started. Nothing is silently ignored.

// MasterChange is what a reload did with changed nsfd.ini settings.
type MasterChange struct {
	// Applying are the settings a re-execution in place applies, at once
	// after the reload answers.
	Applying []string `json:"applying,omitempty"`
	// Pending are the settings that cannot change while nsfd runs: setting
	// → why. They apply when nsfd is stopped and started.
	Pending map[string]string `json:"pending,omitempty"`
	// Notes say what of an applied setting reaches running workers only
	// once they are replaced.
	Notes []string `json:"notes,omitempty"`
}

// masterSetting is one nsfd.ini setting as a reload compares it.
type masterSetting struct {
	key     string
	get     func(*config.Master) string
	pending string // why it cannot change live; "": a re-exec applies it
	note    string // what running workers keep, if anything
}

const workersKeepEnv = "running workers keep the old value in their environment until they are replaced (`nsfd restart NAME`)"

var masterSettings = []masterSetting{
	{key: "nsfd.node_name", get: func(m *config.Master) string { return m.NodeName }, note: workersKeepEnv},
	{key: "nsfd.run_dir", get: func(m *config.Master) string { return m.RunDir },
		pending: "running workers' notify and resolver sockets are in it, and their environment says so; stop and start nsfd to move it"},
	{key: "nsfd.process_backend", get: func(m *config.Master) string { return m.ProcessBackend },
		pending: "the running workers are watched by the current process backend, which hands them over only to itself; stop and start nsfd to change it"},
	{key: "nsfd.control_socket", get: func(m *config.Master) string { return m.ControlSocket }},
	{key: "nsfd.control_group", get: func(m *config.Master) string { return m.ControlGroup }},
	{key: "nsfd.metrics_addr", get: func(m *config.Master) string { return m.MetricsAddr }},
	{key: "nsfd.http_addr", get: func(m *config.Master) string { return m.HTTPAddr }},
	{key: "nsfd.http_tls_cert", get: func(m *config.Master) string { return m.HTTPTLSCert }},
	{key: "nsfd.http_tls_key", get: func(m *config.Master) string { return m.HTTPTLSKey }},
	{key: "nsfd.http_users", get: func(m *config.Master) string { return m.HTTPUsers }},
	{key: "registry.type", get: func(m *config.Master) string { return m.Registry.Type }, note: workersKeepEnv},
	{key: "registry.dsn", get: func(m *config.Master) string { return m.Registry.DSN }, note: workersKeepEnv},
	{key: "registry.heartbeat", get: func(m *config.Master) string { return m.Registry.Heartbeat.String() }},
	{key: "log.target", get: func(m *config.Master) string { return m.Log.Target }},
	{key: "log.file", get: func(m *config.Master) string { return m.Log.File }},
	{key: "log.format", get: func(m *config.Master) string { return m.Log.Format }},
	{key: "log.level", get: func(m *config.Master) string { return m.Log.Level }},
	{key: "log.max_size", get: func(m *config.Master) string { return strconv.FormatInt(m.Log.MaxSize, 10) }},
	{key: "log.max_files", get: func(m *config.Master) string { return strconv.Itoa(m.Log.MaxFiles) }},
	{key: "log.syslog_addr", get: func(m *config.Master) string { return m.Log.SyslogAddr }},
	{key: "log.syslog_ident", get: func(m *config.Master) string { return m.Log.SyslogIdent }},
	{key: "log.syslog_facility", get: func(m *config.Master) string { return m.Log.SyslogFacility }},
}

// diffMaster compares the running settings with those just loaded.
func diffMaster(cur, next *config.Master) MasterChange {
	var c MasterChange
	for _, st := range masterSettings {
		if st.get(cur) == st.get(next) {
			continue
		}
		if st.pending != "" {
			if c.Pending == nil {
				c.Pending = map[string]string{}
			}
			c.Pending[st.key] = st.pending
			continue
		}
		c.Applying = append(c.Applying, st.key)
		if st.note != "" {
			c.Notes = append(c.Notes, st.key+": "+st.note)
		}
	}
	return c
}

// masterReloaded is the part of a reload about nsfd.ini, on Run's
// goroutine: it records what cannot change live and, if something can,
// re-executes the running binary once the reload has answered.
func (s *Supervisor) masterReloaded(ctx context.Context, next *config.Master) *MasterChange {
	c := diffMaster(s.master, next)
	s.up.mu.Lock()
	s.up.pending = c.Pending
	s.up.mu.Unlock()
	for k, why := range c.Pending {
		s.log.Warn("nsfd.ini setting not applied: it cannot change while nsfd runs", "setting", k, "why", why)
	}
	if len(c.Applying) == 0 {
		if len(c.Pending) == 0 {
			return nil
		}
		return &c
	}
	s.log.Info("nsfd.ini changed; re-executing in place to apply it", "settings", c.Applying)
	go func() {
		// /proc/self/exe: this very binary, even if its file was replaced since.
		t := target{binary: "/proc/self/exe", version: s.opts.Version, tcpEndpoints: true}
		herr, err := s.doHandOver(ctx, t, "nsfd.ini changed: "+fmt.Sprint(c.Applying))
		if herr != nil {
			s.upgradeFailed(herr)
		}
		if err != nil && err != ErrShuttingDown {
			s.log.Error("nsfd.ini change not applied", "error", err)
		}
	}()
	return &c
}
