package supervisor

import (
	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/worker"
)

// secureEnv tells a worker the files of its daemon's secured calls: the
// certificate and key it serves TLS with, the CAs of its clients'
// certificates, its tokens file (worker.TLSConfig, wire.EnvAuth).
func secureEnv(d *config.Daemon) []string {
	var env []string
	for _, kv := range [][2]string{
		{worker.EnvTLSCert, d.TLSCert},
		{worker.EnvTLSKey, d.TLSKey},
		{worker.EnvTLSClientCA, d.TLSClientCA},
		{worker.EnvTokens, d.Tokens},
	} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	return env
}

// secureEndpoint records in e whether clients must speak TLS to it, and
// the name they verify its certificate against: a stream endpoint of a
// daemon with tls_cert (the worker library does not wrap datagrams).
func secureEndpoint(d *config.Daemon, e *registry.Endpoint) {
	if d.TLSCert == "" || (e.Proto != registry.ProtoTCP && e.Proto != registry.ProtoUnix) {
		return
	}
	e.TLS, e.ServerName = true, d.TLSServerName
}
