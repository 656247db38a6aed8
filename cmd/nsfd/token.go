package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"strings"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/wire"
)

// token makes a token for USER: a random secret of 256 bits, the client's
// credential USER:TOKEN (written to --out, mode 0600, or printed), and the
// line of the daemon's tokens file with its bcrypt hash (printed).
func (m *Main) token(etc string, args []string) error {
	fs := m.flags("token", &etc)
	out := fs.String("out", "", "write the client's credential (USER:TOKEN) to this new file, mode 0600, instead of printing it")
	commands := fs.String("commands", "", "the commands USER may run, comma separated (default: all)")
	if err := m.parse(fs, interspersed(args, nil)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"usage: nsfd token USER [--commands C,C...] [--out FILE]"}
	}
	user := fs.Arg(0)
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	cred := user + ":" + tok
	if _, err := client.ParseCredential(cred); err != nil || strings.ContainsAny(user, " \t:#") {
		return &usageError{fmt.Sprintf("user %q: no blanks, ':' or '#'", user)}
	}
	hash, err := wire.HashToken(tok)
	if err != nil {
		return err
	}
	line := user + ":" + hash
	if *commands != "" {
		line += ":" + *commands
	}
	if _, err := wire.ParseTokens("line", []byte(line)); err != nil {
		return &usageError{err.Error()}
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, iofs.ErrExist) {
			return fmt.Errorf("%s exists: nsfd token does not overwrite a credential", *out)
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(f, cred)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "nsfd: the credential of %s is in %s; add this line to the daemon's tokens file:\n", user, *out)
		fmt.Fprintln(m.Stdout, line)
		return nil
	}
	fmt.Fprintf(m.Stdout, "# the client's credential, secret (nsfd call --token-file FILE, $NSFD_TOKEN_FILE, $NSFD_TOKEN):\n%s\n", cred)
	fmt.Fprintf(m.Stdout, "# the line of the daemon's tokens file:\n%s\n", line)
	return nil
}
