package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
)

// callFailed is the error of a call answered with an error code: "CODE
// MESSAGE", which Run prints on stderr before it exits 1.
type callFailed struct {
	code int
	msg  string
}

func (e *callFailed) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

func newCallCmd(m *Main) *cobra.Command {
	var (
		asJSON  bool
		timeout time.Duration
		user    string
		sec     *callSecurity
	)
	cmd := &cobra.Command{
		Use:   "call NAME COMMAND [DATA-JSON]",
		Short: "send a request to a framework daemon by name and print the response",
		Long: `Send one request to a framework daemon, found by name in the registry, and print
the response: its data (a JSON string as plain text), or with --json the whole
response. An asynchronous answer is waited for, within --timeout. Codes from
2000 up print "CODE MESSAGE" on stderr and exit 1. A daemon that does not
speak the framework protocol fails at once. TLS and tokens: docs/wire.md.`,
		Example: `  nsfd call kv put '{"key":"a","value":"1"}'
  nsfd call kv get '{"key":"a"}' --json
  nsfd call kv reindex --timeout 2m
  nsfd call kv get '{"key":"a"}' --token-file ~/.nsfd-token`,
		Args:              nargs(2, 3),
		ValidArgsFunction: m.completeDaemons(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.call(cmd, args, asJSON, timeout, user, sec)
		},
	}
	fs := cmd.Flags()
	jsonFlag(fs, &asJSON, "print the whole response as JSON")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long, waiting for an async result included")
	fs.StringVar(&user, "user", "", "the request's user (without a credential; with one, the credential names the user)")
	sec = callSecurityFlags(fs)
	return cmd
}

// call sends one request to a daemon by name, through the registry named in
// nsfd.ini, and prints the response.
func (m *Main) call(cmd *cobra.Command, args []string, asJSON bool, timeout time.Duration, user string, sec *callSecurity) error {
	ctx := cmd.Context()
	opts, err := sec.options()
	if err != nil {
		return err
	}
	if user != "" && opts.Credential != "" {
		return usagef(cmd, "--user and a credential (--token-file, $NSFD_TOKEN_FILE, $NSFD_TOKEN): the credential names the user")
	}
	name, command := args[0], args[1]
	req := &wire.Request{Command: command, User: user}
	if len(args) == 3 {
		data := []byte(args[2])
		if !json.Valid(data) {
			return usagef(cmd, "DATA-JSON is not valid JSON: %s", args[2])
		}
		req.Data = data
	}
	if timeout <= 0 {
		return usagef(cmd, "--timeout must be positive")
	}

	mc, err := config.LoadMaster(m.Etc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reg, err := registry.Open(ctx, mc.Registry.Type, mc.Registry.DSN)
	if err != nil {
		return fmt.Errorf("open registry %s %s: %w", mc.Registry.Type, registry.Redact(mc.Registry.DSN), err)
	}
	defer reg.Close()
	opts.LocalNode, opts.MaxAge, opts.MaxIdle, opts.NoWatch = mc.NodeName, 3*mc.Registry.Heartbeat, -1, true
	c := client.New(reg, opts)
	defer c.Close()
	if err := probe(ctx, c, name); err != nil {
		return err
	}
	resp, err := c.Call(ctx, name, req)
	if err != nil {
		return err
	}
	if asJSON {
		b, err := json.MarshalIndent(resp, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "%s\n", b)
	} else if len(resp.Data) > 0 {
		var s string
		if json.Unmarshal(resp.Data, &s) == nil {
			fmt.Fprintln(m.Stdout, s)
		} else {
			var b bytes.Buffer
			if json.Indent(&b, resp.Data, "", "  ") != nil {
				b.Reset()
				b.Write(resp.Data)
			}
			fmt.Fprintf(m.Stdout, "%s\n", b.Bytes())
		}
	}
	if !wire.IsSuccess(resp.Code) {
		return &callFailed{resp.Code, resp.Message}
	}
	return nil
}

// probeTimeout bounds the probe of `nsfd call`.
const probeTimeout = time.Second

// errNotFramework is wrapped when a daemon does not answer the framework's
// protocol.
var errNotFramework = errors.New("does not speak the framework protocol")

// probe sends a request with no command, which a framework daemon answers
// at once (2003 missing parameter, or an authentication code) without
// running a handler, so that a daemon that does not speak the protocol
// (echo, HTTP) fails within probeTimeout with a clear error rather than
// hanging until --timeout.
func probe(ctx context.Context, c *client.Client, name string) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := c.Call(pctx, name, &wire.Request{})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %w: no answer to a framework frame within %s (or all its workers are busy)", name, errNotFramework, probeTimeout)
	case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		strings.Contains(err.Error(), "decode response"):
		return fmt.Errorf("%s %w: it answered something else (%v)", name, errNotFramework, err)
	}
	return err
}
