package client

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nsfd/nsfd/wire"
)

// withCredential returns req with the client's credential as its User and
// Pass, or req itself when it carries its own (or the client has none).
// The caller's request is not changed.
func (c *Client) withCredential(req *wire.Request) *wire.Request {
	if c.opts.Credential == "" || req.User != "" || req.Pass != "" {
		return req
	}
	user, token, _ := strings.Cut(c.opts.Credential, ":")
	r := *req
	r.User, r.Pass = user, token
	return &r
}

// ErrBadCredential is returned (wrapped) for a credential that is not
// USER:TOKEN.
var ErrBadCredential = errors.New("not USER:TOKEN")

// ParseCredential checks a credential, "USER:TOKEN" (surrounding white
// space and a trailing newline are dropped), and returns it as
// Options.Credential wants it. The error never contains the token.
func ParseCredential(s string) (string, error) {
	s = strings.TrimSpace(s)
	user, token, ok := strings.Cut(s, ":")
	if !ok || user == "" || token == "" || strings.ContainsAny(s, "\r\n") {
		return "", ErrBadCredential
	}
	return user + ":" + token, nil
}

// ReadCredential reads a credential file: one line, USER:TOKEN. The file
// should be readable by its owner only; ReadCredential refuses one that
// others may read, as ssh refuses a private key. The error never contains
// the token.
func ReadCredential(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("credential: %s is readable by every user (mode %04o): chmod o-r it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 && len(bytes.TrimSpace(b[i:])) > 0 {
		return "", fmt.Errorf("credential: %s: more than one line", path)
	}
	cred, err := ParseCredential(string(b))
	if err != nil {
		return "", fmt.Errorf("credential: %s: %w", path, err)
	}
	return cred, nil
}
