package client

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/nsfd/nsfd/worker"
)

// TLSConfig returns the configuration for Options.TLS: the daemons'
// certificates verified against the CA certificates of the PEM file caFile
// ("" for the system's roots), and, when certFile and keyFile are set, the
// client's own certificate for daemons that want mutual TLS. It returns nil
// when all three are empty.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := worker.LoadCAs(caFile)
		if err != nil {
			return nil, fmt.Errorf("client: tls: %w", err)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("client: tls: a client certificate needs both its certificate and its key")
	}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client: tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// SecurityFromEnv fills in o's TLS, ServerName and Credential from the
// environment (worker.EnvClientCA, EnvClientCert, EnvClientKey,
// EnvServerName, EnvTokenFile, EnvToken), where o leaves them unset.
func SecurityFromEnv(o Options) (Options, error) {
	if o.TLS == nil {
		cfg, err := TLSConfig(os.Getenv(worker.EnvClientCA), os.Getenv(worker.EnvClientCert), os.Getenv(worker.EnvClientKey))
		if err != nil {
			return o, err
		}
		o.TLS = cfg
	}
	if o.ServerName == "" {
		o.ServerName = os.Getenv(worker.EnvServerName)
	}
	if o.Credential == "" {
		switch file, tok := os.Getenv(worker.EnvTokenFile), os.Getenv(worker.EnvToken); {
		case file != "":
			cred, err := ReadCredential(file)
			if err != nil {
				return o, fmt.Errorf("client: %s: %w", worker.EnvTokenFile, err)
			}
			o.Credential = cred
		case tok != "":
			cred, err := ParseCredential(tok)
			if err != nil {
				return o, fmt.Errorf("client: %s: %w", worker.EnvToken, err)
			}
			o.Credential = cred
		}
	}
	return o, nil
}
