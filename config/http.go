package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"

	"github.com/nsfd/nsfd/wire"
)

// validateHTTP checks the web page's keys of nsfd.ini: the certificate and
// its key go together and load; the users file loads; and a non-loopback
// http_addr has users, so that no one reaches the page's actions without
// authenticating.
func validateHTTP(m *Master, l *keyLoader, as RunAs) Errors {
	var errs Errors
	at := func(key, msg string) {
		errs = append(errs, &Error{File: l.path, Line: l.line("nsfd", key), Key: key, Msg: msg})
	}
	if m.HTTPAddr == "" {
		for _, k := range []string{"http_tls_cert", "http_tls_key", "http_users"} {
			if l.line("nsfd", k) > 0 {
				at(k, "has no effect without http_addr")
			}
		}
		return errs
	}
	switch {
	case m.HTTPTLSCert != "" && m.HTTPTLSKey == "":
		at("http_tls_cert", "needs http_tls_key, the certificate's private key")
	case m.HTTPTLSKey != "" && m.HTTPTLSCert == "":
		at("http_tls_key", "needs http_tls_cert, the certificate it is the key of")
	case m.HTTPTLSCert != "":
		cert, err := readFile(m.HTTPTLSCert, as)
		if err != nil {
			at("http_tls_cert", fmt.Sprintf("%q: %s", m.HTTPTLSCert, readError(m.HTTPTLSCert, err).Msg))
			break
		}
		key, err := readFile(m.HTTPTLSKey, as)
		if err != nil {
			at("http_tls_key", fmt.Sprintf("%q: %s", m.HTTPTLSKey, readError(m.HTTPTLSKey, err).Msg))
			break
		}
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			at("http_tls_cert", fmt.Sprintf("%q with http_tls_key %q: %v", m.HTTPTLSCert, m.HTTPTLSKey, err))
		}
	}
	if m.HTTPUsers != "" {
		data, err := readFile(m.HTTPUsers, as)
		if err != nil {
			at("http_users", fmt.Sprintf("%q: %s", m.HTTPUsers, readError(m.HTTPUsers, err).Msg))
		} else if _, err := wire.ParseTokens(m.HTTPUsers, data); err != nil {
			at("http_users", err.Error())
		}
	} else if !Loopback(m.HTTPAddr) {
		at("http_addr", fmt.Sprintf("%s is reachable from other hosts and http_users is not set: "+
			"set http_users (a tokens file; `nsfd token USER` makes a line) or bind 127.0.0.1", m.HTTPAddr))
	}
	return errs
}

// Loopback reports whether the host of addr (host:port) is a loopback
// address or localhost: only this host can reach it.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
