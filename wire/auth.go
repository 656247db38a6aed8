package wire

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"github.com/nsfd/nsfd/worker"
)

// An Authenticator decides whether a request may reach the Handler. The
// server asks it before each request is handled.
type Authenticator interface {
	// Authorize returns nil to let req through, or an *Error with
	// CodeInvalidAuthInfo (the request carries no usable user and
	// token), CodeAuthentication (unknown user, or wrong token) or
	// CodeAuthorization (the user may not run req.Command), whose
	// message the client gets. It must not keep req, nor log req.Pass.
	Authorize(ctx context.Context, req *Request) error
}

// AuthorizeFunc adapts a function to an Authenticator.
type AuthorizeFunc func(ctx context.Context, req *Request) error

// Authorize calls f(ctx, req).
func (f AuthorizeFunc) Authorize(ctx context.Context, req *Request) error { return f(ctx, req) }

var _ Authenticator = AuthorizeFunc(nil)

// MaxAuthFailures is how many requests a connection may have refused by
// its Authenticator: the last is answered with CodeAuthFailedClosing, and
// the connection closed, so that guessing costs a new connection every few
// tries.
const MaxAuthFailures = 3

// noAuth is the Authenticator of a server that checks nothing.
var noAuth Authenticator = AuthorizeFunc(func(context.Context, *Request) error { return nil })

var envAuth struct {
	sync.Mutex
	path string // the NSFD_TOKENS auth was made for
	auth Authenticator
}

// EnvAuth returns the Authenticator a worker's master asks for: the tokens
// file named by NSFD_TOKENS (the daemon's `tokens` key), loaded with
// LoadTokens and followed as it changes; nil when the master names none.
// If the file does not load, every request is refused with
// CodeAuthentication (and logger, or slog.Default(), says why): a daemon
// meant to check tokens never serves without. The file is loaded once per
// process (again only if NSFD_TOKENS names another). It is what
// ServerOptions.Auth defaults to.
func EnvAuth(logger *slog.Logger) Authenticator {
	path := os.Getenv(worker.EnvTokens)
	envAuth.Lock()
	defer envAuth.Unlock()
	if path == envAuth.path {
		return envAuth.auth
	}
	envAuth.path, envAuth.auth = path, nil
	if path == "" {
		return nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	t, err := LoadTokens(path)
	if err != nil {
		logger.Error("wire: tokens do not load; refusing every request", "error", err)
		envAuth.auth = AuthorizeFunc(func(context.Context, *Request) error {
			return Errorf(CodeAuthentication, "the daemon's tokens file does not load")
		})
		return envAuth.auth
	}
	t.Logger = logger
	envAuth.auth = t
	return t
}

// authenticator is the Authenticator o asks for: its Auth, else EnvAuth's.
func (o *ServerOptions) authenticator() Authenticator {
	if o.Auth != nil {
		return o.Auth
	}
	if a := EnvAuth(o.Logger); a != nil {
		return a
	}
	return noAuth
}
