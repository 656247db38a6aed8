package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

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

// call sends one request to a daemon by name, through the registry named in
// nsfd.ini, and prints the response: its data (a JSON string as plain text),
// or with --json the whole response. An asynchronous answer is waited for.
// Codes from 2000 up print "CODE MESSAGE" on stderr and exit 1.
func (m *Main) call(ctx context.Context, etc string, args []string) error {
	fs := m.flags("call", &etc)
	asJSON := fs.Bool("json", false, "print the whole response as JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long, waiting for an async result included")
	user := fs.String("user", "", "the request's user")
	sec := callSecurityFlags(fs)
	if err := m.parse(fs, interspersed(args, map[string]bool{"json": true})); err != nil {
		return err
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		return &usageError{"usage: nsfd call NAME COMMAND [DATA-JSON] [--json] [--timeout D] [--user U] " + callSecurityUsage}
	}
	opts, err := sec.options()
	if err != nil {
		return err
	}
	if *user != "" && opts.Credential != "" {
		return &usageError{"--user and a credential (--token-file, $NSFD_TOKEN_FILE, $NSFD_TOKEN): the credential names the user"}
	}
	name, command := fs.Arg(0), fs.Arg(1)
	req := &wire.Request{Command: command, User: *user}
	if fs.NArg() == 3 {
		data := []byte(fs.Arg(2))
		if !json.Valid(data) {
			return &usageError{fmt.Sprintf("DATA-JSON is not valid JSON: %s", fs.Arg(2))}
		}
		req.Data = data
	}
	if *timeout <= 0 {
		return &usageError{"--timeout must be positive"}
	}

	mc, err := config.LoadMaster(etc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reg, err := registry.Open(ctx, mc.Registry.Type, mc.Registry.DSN)
	if err != nil {
		return fmt.Errorf("open registry %s %s: %w", mc.Registry.Type, registry.Redact(mc.Registry.DSN), err)
	}
	defer reg.Close()
	opts.LocalNode, opts.MaxAge, opts.MaxIdle, opts.NoWatch = mc.NodeName, 3*mc.Registry.Heartbeat, -1, true
	c := client.New(reg, opts)
	defer c.Close()
	resp, err := c.Call(ctx, name, req)
	if err != nil {
		return err
	}
	if *asJSON {
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

// interspersed moves the flags among args before the positional arguments,
// so that `call NAME COMMAND DATA --json` parses as the usage line shows.
// bools names the flags that take no value; "--" ends the flags.
func interspersed(args []string, bools map[string]bool) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || (a[1] >= '0' && a[1] <= '9') {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := a[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		if bytes.ContainsRune([]byte(name), '=') || bools[name] {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), pos...)
}
