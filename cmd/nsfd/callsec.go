package main

import (
	"github.com/spf13/pflag"

	"github.com/nsfd/nsfd/client"
)

// callSecurity holds the flags of `nsfd call` for daemons with TLS or
// tokens. A token is never taken from the command line, where every user
// of the host can read it: --token-file names a file (mode 0600) that
// holds USER:TOKEN, or $NSFD_TOKEN_FILE or $NSFD_TOKEN hold it.
type callSecurity struct {
	ca, cert, key, serverName, tokenFile *string
}

func callSecurityFlags(fs *pflag.FlagSet) *callSecurity {
	return &callSecurity{
		ca:         fs.String("ca", "", "PEM file of the CAs of the daemons' certificates (default $NSFD_CA, else the system's)"),
		cert:       fs.String("cert", "", "the client's certificate, for daemons with tls_client_ca (default $NSFD_CLIENT_CERT)"),
		key:        fs.String("key", "", "the client certificate's key (default $NSFD_CLIENT_KEY)"),
		serverName: fs.String("server-name", "", "verify the daemon's certificate against this name (default $NSFD_SERVER_NAME, else the registry's)"),
		tokenFile:  fs.String("token-file", "", "file holding USER:TOKEN, for daemons with tokens (default $NSFD_TOKEN_FILE, else $NSFD_TOKEN)"),
	}
}

// options are the client options the flags, then the environment, give.
func (s *callSecurity) options() (client.Options, error) {
	var o client.Options
	if *s.ca != "" || *s.cert != "" || *s.key != "" {
		cfg, err := client.TLSConfig(*s.ca, *s.cert, *s.key)
		if err != nil {
			return o, err
		}
		o.TLS = cfg
	}
	o.ServerName = *s.serverName
	if *s.tokenFile != "" {
		cred, err := client.ReadCredential(*s.tokenFile)
		if err != nil {
			return o, err
		}
		o.Credential = cred
	}
	return client.SecurityFromEnv(o)
}
