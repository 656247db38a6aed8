package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// The keys of secured calls: the worker serves TLS with tls_cert and
// tls_key, wants client certificates signed by tls_client_ca, and checks
// tokens against the tokens file (see package wire). The master passes the
// paths to the worker (worker.EnvTLSCert, ...), which reads the files
// itself, as its own user.
var secureKeys = []string{"tls_cert", "tls_key", "tls_client_ca", "tokens"}

// applySecure sets the field of one of secureKeys.
func (l *daemonLoader) applySecure(e entry) {
	d := l.d
	path := resolve(d.Dir, e.Value)
	if l.secure == nil {
		l.secure = map[string]string{}
	}
	l.secure[e.Key] = e.Value
	switch e.Key {
	case "tls_cert":
		d.TLSCert = path
	case "tls_key":
		d.TLSKey = path
	case "tls_client_ca":
		d.TLSClientCA = path
	case "tokens":
		d.Tokens = path
	}
}

// checkSecure checks what the secured-call keys name, once the credentials
// are known: both halves of a certificate, files that load and that the
// workers' user can read, a key no other user can read, and derives the
// name clients verify the certificate against (TLSServerName).
func (l *daemonLoader) checkSecure() {
	d := l.d
	set := l.firstSet(secureKeys...)
	if set == "" {
		return
	}
	if d.Chroot != "" {
		l.failAt(set, "not supported with chroot: the workers read these files after they are chrooted",
			"remove chroot, or terminate TLS and check tokens elsewhere", nil)
		return
	}
	switch {
	case d.TLSCert != "" && d.TLSKey == "":
		l.failAt("tls_cert", "needs tls_key, the certificate's private key", "", nil)
		return
	case d.TLSKey != "" && d.TLSCert == "":
		l.failAt("tls_key", "needs tls_cert, the certificate it is the key of", "", nil)
		return
	case d.TLSClientCA != "" && d.TLSCert == "":
		l.failAt("tls_client_ca", "needs tls_cert and tls_key: mutual TLS is TLS first", "", nil)
		return
	}
	read := func(key, path string) ([]byte, bool) {
		data, err := readFile(path, l.as)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				l.failAt(key, fmt.Sprintf("%q does not exist", l.secure[key]), "", nil)
			} else {
				l.failAt(key, fmt.Sprintf("%q: %s", l.secure[key], readError(path, err).Msg), "", nil)
			}
			return nil, false
		}
		if msg := l.unreadable(path); msg != "" {
			l.failAt(key, msg, "chown or chgrp it to the daemon's user or group", nil)
			return nil, false
		}
		return data, true
	}
	if d.TLSCert != "" {
		certPEM, ok1 := read("tls_cert", d.TLSCert)
		keyPEM, ok2 := read("tls_key", d.TLSKey)
		if ok2 {
			if fi, err := os.Stat(d.TLSKey); err == nil && fi.Mode().Perm()&0o004 != 0 {
				l.failAt("tls_key", fmt.Sprintf("%q is readable by every user (mode %04o)", d.TLSKey, fi.Mode().Perm()),
					"chmod o-r it", nil)
				ok2 = false
			}
		}
		if ok1 && ok2 {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				l.failAt("tls_cert", fmt.Sprintf("%q with tls_key %q: %v", d.TLSCert, d.TLSKey, err), "", nil)
			} else {
				d.TLSServerName = serverName(pair.Leaf)
			}
		}
	}
	if d.TLSClientCA != "" {
		if data, ok := read("tls_client_ca", d.TLSClientCA); ok && !x509.NewCertPool().AppendCertsFromPEM(data) {
			l.failAt("tls_client_ca", fmt.Sprintf("%q holds no PEM certificate", d.TLSClientCA), "", nil)
		}
	}
	if d.Tokens != "" {
		read("tokens", d.Tokens) // its lines are checked by the worker (wire.LoadTokens), which refuses every request if they do not load
	}
}

// serverName is the name clients verify c against: its first DNS name that
// is not a wildcard, or "" (then the endpoint's IP address).
func serverName(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	for _, n := range c.DNSNames {
		if !strings.Contains(n, "*") {
			return n
		}
	}
	return ""
}

// unreadable says why the daemon's workers, under their credentials, could
// not read path, or "" if they can (by its mode bits; a file with an access
// control list is not judged).
func (l *daemonLoader) unreadable(path string) string {
	c := l.d.Creds
	if c.UID <= 0 {
		return ""
	}
	if b := searchBlocker(path, c); b != nil {
		return fmt.Sprintf("the workers (%s) cannot reach %s: %s does not let them search it", c, path, b)
	}
	fi, err := os.Stat(path)
	if err != nil || hasACL(path) {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	mode := fi.Mode().Perm()
	inGroup := int(st.Gid) == c.GID
	for _, g := range c.Groups {
		inGroup = inGroup || int(st.Gid) == g
	}
	switch {
	case int(st.Uid) == c.UID:
		if mode&0o400 != 0 {
			return ""
		}
	case inGroup:
		if mode&0o040 != 0 {
			return ""
		}
	case mode&0o004 != 0:
		return ""
	}
	return fmt.Sprintf("the workers (%s) cannot read %s (mode %04o, owner %d:%d)", c, path, mode, st.Uid, st.Gid)
}
