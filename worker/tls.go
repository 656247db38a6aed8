package worker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// HandshakeTimeout bounds a TLS handshake: a client that does not finish
// it in time is disconnected, and its connection never reaches the Handler.
const HandshakeTimeout = 10 * time.Second

// certCheckEvery is how often a handshake looks whether the certificate
// file changed on disk.
const certCheckEvery = time.Second

// TLSConfig returns the TLS configuration the master asks the worker to
// serve with: the certificate and key named by NSFD_TLS_CERT and
// NSFD_TLS_KEY (PEM), and, when NSFD_TLS_CLIENT_CA names a PEM file of CA
// certificates, mutual TLS: every client must present a certificate that
// one of them signed. It returns nil, nil when the master asks for no TLS.
//
// The certificate is read again when its file changes (checked at most once
// a second, at a handshake), so a renewed certificate is served without a
// restart; if the new files do not load, the old certificate stays. The
// minimum version is TLS 1.2.
func TLSConfig() (*tls.Config, error) {
	cert, key, ca := os.Getenv(EnvTLSCert), os.Getenv(EnvTLSKey), os.Getenv(EnvTLSClientCA)
	if cert == "" && key == "" && ca == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, fmt.Errorf("worker: tls: %s and %s must both be set", EnvTLSCert, EnvTLSKey)
	}
	r := &certReloader{certFile: cert, keyFile: key}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}
	if ca != "" {
		pool, err := LoadCAs(ca)
		if err != nil {
			return nil, fmt.Errorf("worker: tls: %s: %w", EnvTLSClientCA, err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// LoadCAs reads a PEM file of CA certificates into a pool; a file with none
// is an error.
func LoadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// certReloader serves a certificate and key from files, and loads them
// again when the certificate file changes.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (r *certReloader) load() error {
	fi, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("worker: tls: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("worker: tls: %s, %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modTime = &c, fi.ModTime()
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		if fi, err := os.Stat(r.certFile); err == nil && !fi.ModTime().Equal(r.modTime) {
			_ = r.load() // a half-written renewal: keep the old one, try again later
		}
	}
	if r.cert == nil {
		return nil, errors.New("worker: tls: no certificate")
	}
	return r.cert, nil
}
