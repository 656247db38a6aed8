package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/registry"
)

func newResolveCmd(m *Main) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "resolve NAME",
		Short: "a daemon's endpoints, from the registry (works with the master down)",
		Long: `Print a daemon's endpoints as the registry named in nsfd.ini has them (this
node's first), one "PROTO ADDRESS" a line. It reads the registry directly, so
it works with the master down. Endpoints whose health check fails are left
out while another node has the daemon healthy; when none has, they are
printed with a third word, "unhealthy".`,
		Example: `  nsfd resolve kv
  nsfd resolve kv --json`,
		Args:              nargs(1, 1),
		ValidArgsFunction: m.completeDaemons(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.resolve(cmd.Context(), args[0], asJSON)
		},
	}
	jsonFlag(cmd.Flags(), &asJSON, "print JSON")
	return cmd
}

// resolve prints a daemon's endpoints from the registry named in nsfd.ini.
func (m *Main) resolve(ctx context.Context, name string, asJSON bool) error {
	mc, err := config.LoadMaster(m.Etc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reg, err := registry.Open(ctx, mc.Registry.Type, mc.Registry.DSN)
	if err != nil {
		return fmt.Errorf("open registry %s %s: %w", mc.Registry.Type, registry.Redact(mc.Registry.DSN), err)
	}
	defer reg.Close()
	eps, err := reg.Resolve(ctx, name, registry.ResolveOptions{LocalNode: mc.NodeName, MaxAge: 3 * mc.Registry.Heartbeat})
	if err != nil {
		return err
	}
	if asJSON {
		type ep struct {
			Node       string `json:"node"`
			Proto      string `json:"proto"`
			Address    string `json:"address"`
			Encoding   string `json:"encoding"`
			TLS        bool   `json:"tls,omitempty"`
			ServerName string `json:"server_name,omitempty"`
			Unhealthy  bool   `json:"unhealthy,omitempty"`
		}
		out := []ep{}
		for _, e := range eps {
			out = append(out, ep{e.Node, e.Proto, e.Address, e.Encoding, e.TLS, e.ServerName, e.Unhealthy})
		}
		b, _ := json.MarshalIndent(map[string]any{"name": name, "endpoints": out}, "", "  ")
		fmt.Fprintf(m.Stdout, "%s\n", logging.JSONEscape(b))
		return nil
	}
	// Whoever can write the registry (every framework worker has its DSN)
	// writes these rows: escaped on their way to the terminal.
	for _, e := range eps {
		if e.Unhealthy { // every node's is: Resolve returns unhealthy endpoints only then
			fmt.Fprintf(m.Stdout, "%s %s unhealthy\n", logging.Escape(e.Proto), logging.Escape(e.Address))
			continue
		}
		fmt.Fprintf(m.Stdout, "%s %s\n", logging.Escape(e.Proto), logging.Escape(e.Address))
	}
	return nil
}
