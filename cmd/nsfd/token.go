package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/wire"
)

func newTokenCmd(m *Main) *cobra.Command {
	var out, commands string
	cmd := &cobra.Command{
		Use:   "token USER",
		Short: "a token for USER: its credential, and the line of a daemon's tokens file",
		Long: `Make a token for USER: a random secret of 256 bits, the client's credential
USER:TOKEN (written to --out, mode 0600, or printed), and the line of the
daemon's tokens file with its bcrypt hash (printed). docs/security.md.`,
		Example: `  nsfd token ann --out ann.token
  nsfd token ops --commands get,list`,
		Args: nargs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.token(cmd, args[0], out, commands)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the client's credential (USER:TOKEN) to this new file, mode 0600, instead of printing it")
	cmd.Flags().StringVar(&commands, "commands", "", "the commands USER may run, comma separated (default: all)")
	return cmd
}

// token makes a token for user.
func (m *Main) token(cmd *cobra.Command, user, out, commands string) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	cred := user + ":" + tok
	if _, err := client.ParseCredential(cred); err != nil || strings.ContainsAny(user, " \t:#") {
		return usagef(cmd, "user %q: no blanks, ':' or '#'", user)
	}
	hash, err := wire.HashToken(tok)
	if err != nil {
		return err
	}
	line := user + ":" + hash
	if commands != "" {
		line += ":" + commands
	}
	if _, err := wire.ParseTokens("line", []byte(line)); err != nil {
		return usagef(cmd, "%v", err)
	}
	if out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, iofs.ErrExist) {
			return fmt.Errorf("%s exists: nsfd token does not overwrite a credential", out)
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
		fmt.Fprintf(m.Stderr, "nsfd: the credential of %s is in %s; add this line to the daemon's tokens file:\n", user, out)
		fmt.Fprintln(m.Stdout, line)
		return nil
	}
	fmt.Fprintf(m.Stdout, "# the client's credential, secret (nsfd call --token-file FILE, $NSFD_TOKEN_FILE, $NSFD_TOKEN):\n%s\n", cred)
	fmt.Fprintf(m.Stdout, "# the line of the daemon's tokens file:\n%s\n", line)
	return nil
}
