package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/registry"
)

// resolve prints a daemon's endpoints from the registry named in nsfd.ini.
// It reads the registry directly, so it works with the master down.
func (m *Main) resolve(ctx context.Context, etc string, args []string) error {
	fs := m.flags("resolve", &etc)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"usage: nsfd resolve NAME [--json]"}
	}
	name := fs.Arg(0)
	mc, err := config.LoadMaster(etc)
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
	if *asJSON {
		type ep struct {
			Node    string `json:"node"`
			Proto   string `json:"proto"`
			Address string `json:"address"`
		}
		out := []ep{}
		for _, e := range eps {
			out = append(out, ep{e.Node, e.Proto, e.Address})
		}
		b, _ := json.MarshalIndent(map[string]any{"name": name, "endpoints": out}, "", "  ")
		fmt.Fprintf(m.Stdout, "%s\n", logging.JSONEscape(b))
		return nil
	}
	// Whoever can write the registry (every framework worker has its DSN)
	// writes these rows: escaped on their way to the terminal.
	for _, e := range eps {
		fmt.Fprintf(m.Stdout, "%s %s\n", logging.Escape(e.Proto), logging.Escape(e.Address))
	}
	return nil
}
