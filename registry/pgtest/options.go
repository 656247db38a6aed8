package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options configure LaunchWith. The zero value is Launch's cluster: a UNIX
// socket only, in the test's own network namespace.
type Options struct {
	// NetNS is the path of a network namespace (/var/run/netns/NAME) the
	// server runs in; "" means the test process's. Its UNIX socket, a
	// file, is reached from any namespace.
	NetNS string
	// Listen is the server's listen_addresses: the TCP addresses it
	// listens on (port Port) besides its socket; "" means none.
	Listen string
	// HBA are lines added to pg_hba.conf after the socket's (the
	// superuser in without a password, other roles with one), such as
	// "hostssl all all 198.18.0.0/24 scram-sha-256".
	HBA []string
	// SSLCert and SSLKey are PEM files of the server's certificate and
	// key: the server runs with ssl = on. They are copied into the
	// cluster's directory, owned by the server's user.
	SSLCert, SSLKey string
	// Settings are more lines of postgresql.conf ("log_connections = on").
	Settings []string
}

// settings renders o's postgresql.conf lines, copying the certificate and
// key into s's directory.
func (o Options) settings(s *Server) (string, error) {
	var b strings.Builder
	if o.Listen != "" {
		fmt.Fprintf(&b, "listen_addresses = '%s'\n", strings.ReplaceAll(o.Listen, "'", "''"))
	}
	if o.SSLCert != "" || o.SSLKey != "" {
		cert, err := s.copyOwned(o.SSLCert, "server.crt")
		if err != nil {
			return "", err
		}
		key, err := s.copyOwned(o.SSLKey, "server.key")
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n", cert, key)
	}
	for _, l := range o.Settings {
		b.WriteString(l + "\n")
	}
	return b.String(), nil
}

// copyOwned copies src into the cluster's directory as name, mode 0600,
// owned by the server's user (PostgreSQL refuses a key others can read).
func (s *Server) copyOwned(src, name string) (string, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	dst := filepath.Join(s.dir, name)
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if s.cred != nil {
		if err := os.Chown(dst, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return "", fmt.Errorf("pgtest: %w", err)
		}
	}
	return dst, nil
}

// PID is the server's (the postmaster's) process id, 0 when it is stopped:
// its CPU time, and its backends' (its children), are what a benchmark
// reads in /proc.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid
}
