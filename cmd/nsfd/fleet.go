package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/registry"
)

// fleetNode is one node of `nsfd fleet`: the masters that registered
// daemons under its name.
type fleetNode struct {
	Node string `json:"node"`
	// HeartbeatAge is how long ago its freshest daemon's heartbeat was
	// stamped, by the registry's clock.
	HeartbeatAge time.Duration `json:"-"`
	AgeMillis    int64         `json:"heartbeat_age_ms"`
	// Stale: no heartbeat within 3 beats (nsfd.ini's heartbeat): its
	// master is down, hung, or cut off from the registry.
	Stale      bool           `json:"stale"`
	MasterPIDs []int          `json:"master_pids"`
	Daemons    []fleetDaemon  `json:"daemons"`
	byName     map[string]int // index in Daemons
}

// fleetDaemon is one daemon of a node.
type fleetDaemon struct {
	Name        string          `json:"name"`
	State       string          `json:"state"`
	Encoding    string          `json:"encoding"`
	MasterPID   int             `json:"master_pid"`
	StartedAt   time.Time       `json:"started_at"`
	HeartbeatAt time.Time       `json:"heartbeat_at"`
	AgeMillis   int64           `json:"heartbeat_age_ms"`
	Stale       bool            `json:"stale"`
	LastExit    string          `json:"last_exit,omitempty"`
	Unhealthy   bool            `json:"unhealthy,omitempty"` // its health check fails on this node
	Endpoints   []fleetEndpoint `json:"endpoints"`
}

type fleetEndpoint struct {
	Proto      string `json:"proto"`
	Address    string `json:"address"`
	TLS        bool   `json:"tls,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

func newFleetCmd(m *Main) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "every node in the registry, its heartbeat, its daemons (no master needed)",
		Long: `Print every node in the registry named in nsfd.ini, its heartbeat's age and its
daemons with their state and endpoints. It reads the registry directly, so it
works from any host that can reach it, with no master running. docs/fleet.md.`,
		Example: `  nsfd fleet
  nsfd fleet --json`,
		Args: nargs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return m.fleet(cmd.Context(), asJSON)
		},
	}
	jsonFlag(cmd.Flags(), &asJSON, "print JSON")
	return cmd
}

// fleet prints every node in the registry named in nsfd.ini, its heartbeat
// age and its daemons with their state and endpoints.
func (m *Main) fleet(ctx context.Context, asJSON bool) error {
	mc, err := config.LoadMaster(m.Etc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nodes, now, maxAge, err := loadFleet(ctx, mc)
	if err != nil {
		return err
	}
	if asJSON {
		out := struct {
			Now    time.Time   `json:"now"`
			MaxAge string      `json:"max_age"`
			Nodes  []fleetNode `json:"nodes"`
		}{now, maxAge.String(), nodes}
		if out.Nodes == nil {
			out.Nodes = []fleetNode{}
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "%s\n", b)
		return nil
	}
	writeFleet(m.Stdout, nodes)
	return nil
}

// loadFleet reads the fleet from the registry mc names, with the time by
// the registry's clock and the age past which a heartbeat is stale.
func loadFleet(ctx context.Context, mc *config.Master) (nodes []fleetNode, now time.Time, maxAge time.Duration, err error) {
	reg, err := registry.Open(ctx, mc.Registry.Type, mc.Registry.DSN)
	if err != nil {
		return nil, now, 0, fmt.Errorf("open registry %s %s: %w", mc.Registry.Type, registry.Redact(mc.Registry.DSN), err)
	}
	defer reg.Close()
	ds, err := reg.List(ctx)
	if err != nil {
		return nil, now, 0, err
	}
	now = time.Now()
	if c, ok := reg.(registry.Clock); ok {
		if now, err = c.Now(ctx); err != nil {
			return nil, now, 0, err
		}
	}
	maxAge = 3 * mc.Registry.Heartbeat
	return fleetOf(ds, now, maxAge), now, maxAge, nil
}

// fleetOf groups the registry's daemons by node, nodes and daemons by name;
// a heartbeat older than maxAge at now is stale.
func fleetOf(ds []registry.Daemon, now time.Time, maxAge time.Duration) []fleetNode {
	idx := map[string]int{}
	var nodes []fleetNode
	for _, d := range ds {
		i, ok := idx[d.Node]
		if !ok {
			i = len(nodes)
			idx[d.Node] = i
			nodes = append(nodes, fleetNode{Node: d.Node, HeartbeatAge: -1, byName: map[string]int{}})
		}
		n := &nodes[i]
		age := max(now.Sub(d.HeartbeatAt), 0)
		fd := fleetDaemon{Name: d.Name, State: d.State, Encoding: d.Encoding, MasterPID: d.MasterPID,
			StartedAt: d.StartedAt, HeartbeatAt: d.HeartbeatAt, AgeMillis: age.Milliseconds(),
			Stale: age > maxAge, LastExit: d.LastExit, Endpoints: []fleetEndpoint{}}
		for _, e := range d.Endpoints {
			fd.Unhealthy = fd.Unhealthy || e.Unhealthy
			fd.Endpoints = append(fd.Endpoints, fleetEndpoint{e.Proto, e.Address, e.TLS, e.ServerName})
		}
		n.Daemons = append(n.Daemons, fd)
		if n.HeartbeatAge < 0 || age < n.HeartbeatAge {
			n.HeartbeatAge = age
		}
		if !slices.Contains(n.MasterPIDs, d.MasterPID) {
			n.MasterPIDs = append(n.MasterPIDs, d.MasterPID)
		}
	}
	for i := range nodes {
		n := &nodes[i]
		n.AgeMillis, n.Stale = n.HeartbeatAge.Milliseconds(), n.HeartbeatAge > maxAge
		slices.Sort(n.MasterPIDs)
		slices.SortFunc(n.Daemons, func(a, b fleetDaemon) int { return cmp.Compare(a.Name, b.Name) })
	}
	slices.SortFunc(nodes, func(a, b fleetNode) int { return cmp.Compare(a.Node, b.Node) })
	return nodes
}

// writeFleet prints the fleet as a table: a line per node, then a line per
// daemon of it.
func writeFleet(w io.Writer, nodes []fleetNode) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "no node has registered a daemon")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tHEARTBEAT\tDAEMON\tSTATE\tENDPOINTS")
	for _, n := range nodes {
		beat := fmt.Sprintf("%s ago", roundAge(n.HeartbeatAge))
		if n.Stale {
			beat += " (stale)"
		}
		fmt.Fprintf(tw, "%s\t%s\t\t\t\n", n.Node, beat)
		for _, d := range n.Daemons {
			var eps []string
			for _, e := range d.Endpoints {
				s := e.Proto + " " + e.Address
				if e.TLS {
					s += " (tls"
					if e.ServerName != "" {
						s += " " + e.ServerName
					}
					s += ")"
				}
				eps = append(eps, s)
			}
			state := d.State
			if d.Unhealthy {
				state += " (unhealthy)"
			}
			if d.Stale {
				state += " (stale)"
			}
			fmt.Fprintf(tw, "\t\t%s\t%s\t%s\n", d.Name, state, strings.Join(eps, ", "))
		}
	}
	tw.Flush()
}

// roundAge renders an age to a precision a reader needs.
func roundAge(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
