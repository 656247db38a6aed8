package sqlstore

// The reads of the registry: Resolve (fresh, healthy endpoints, this node's first) and List.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nsfd/nsfd/registry"
)

func (s *Store) Resolve(ctx context.Context, name string, o registry.ResolveOptions) ([]registry.Endpoint, error) {
	maxAge := o.MaxAge
	if maxAge <= 0 {
		maxAge = registry.DefaultMaxAge
	}
	var (
		rows *sql.Rows
		err  error
	)
	if s.resolve != nil {
		rows, err = s.resolve.QueryContext(ctx, maxAge.Milliseconds(), name)
	} else {
		rows, err = s.r.QueryContext(ctx, s.q.resolve, maxAge.Milliseconds(), name)
	}
	if err != nil {
		return nil, s.Fail("resolve", fmt.Sprintf("%q", name), err)
	}
	defer rows.Close()

	// Rows come by node, then endpoint order. Keep the fresh ones, and
	// of those the healthy ones if there are any.
	var (
		eps       []registry.Endpoint
		stale     bool
		healthy   int
		unhealthy bool
	)
	for rows.Next() {
		var (
			e     = registry.Endpoint{Daemon: name}
			pid   int
			fresh bool
		)
		if err := rows.Scan(&e.Node, &e.Proto, &e.Address, &e.Encoding, &e.TLS, &e.ServerName, &e.Unhealthy, &pid, &fresh); err != nil {
			return nil, s.Fail("resolve", fmt.Sprintf("%q", name), err)
		}
		if !fresh && (e.Node != o.AliveNode || pid != o.AlivePID || o.AliveNode == "") {
			stale = true
			continue
		}
		if e.Unhealthy {
			unhealthy = true
		} else {
			healthy++
		}
		eps = append(eps, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.Fail("resolve", fmt.Sprintf("%q", name), err)
	}
	if unhealthy && healthy > 0 {
		eps = healthyOnly(eps, healthy)
	}
	// Keep the nodes as spans of eps: the local node's aside, the others
	// in order.
	type span struct{ from, to int }
	var (
		local  = span{-1, -1}
		others []span
	)
	for n, e := range eps {
		switch {
		case e.Node == o.LocalNode:
			if local.from < 0 {
				local.from = n
			}
			local.to = n + 1
		case len(others) > 0 && eps[others[len(others)-1].from].Node == e.Node:
			others[len(others)-1].to = n + 1
		default:
			others = append(others, span{n, n + 1})
		}
	}
	if len(eps) == 0 {
		if stale {
			return nil, fmt.Errorf("resolve %q: %w", name, registry.ErrStale)
		}
		return nil, fmt.Errorf("resolve %q: %w", name, registry.ErrNotFound)
	}
	if len(others) == 0 || (len(others) == 1 && local.from < 0) {
		return eps, nil // one node: already in order
	}
	out := make([]registry.Endpoint, 0, len(eps))
	if local.from >= 0 {
		out = append(out, eps[local.from:local.to]...)
	}
	k := uint64(len(others))
	start := s.turn.Add(1) % k
	for i := range k {
		sp := others[(start+i)%k]
		out = append(out, eps[sp.from:sp.to]...)
	}
	return out, nil
}

// healthyOnly returns the healthy endpoints of eps, of which there are n,
// in their order.
func healthyOnly(eps []registry.Endpoint, n int) []registry.Endpoint {
	out := make([]registry.Endpoint, 0, n)
	for _, e := range eps {
		if !e.Unhealthy {
			out = append(out, e)
		}
	}
	return out
}

func (s *Store) List(ctx context.Context) ([]registry.Daemon, error) {
	rows, err := s.r.QueryContext(ctx, s.q.list)
	if err != nil {
		return nil, s.Fail("list", "daemons", err)
	}
	defer rows.Close()
	var ds []registry.Daemon
	for rows.Next() {
		var (
			d                          registry.Daemon
			started, beat              int64
			proto, address, serverName sql.NullString
			tls, unhealthy             sql.NullBool
		)
		if err := rows.Scan(&d.Node, &d.Name, &d.State, &d.Encoding, &d.MasterPID, &d.ConfigHash,
			&started, &beat, &d.LastExit, &proto, &address, &tls, &serverName, &unhealthy); err != nil {
			return nil, s.Fail("list", "daemons", err)
		}
		if n := len(ds); n == 0 || ds[n-1].Node != d.Node || ds[n-1].Name != d.Name {
			d.StartedAt, d.HeartbeatAt = time.UnixMilli(started), time.UnixMilli(beat)
			ds = append(ds, d)
		}
		if proto.Valid {
			last := &ds[len(ds)-1]
			last.Endpoints = append(last.Endpoints, registry.Endpoint{Node: d.Node, Daemon: d.Name, Proto: proto.String,
				Address: address.String, Encoding: d.Encoding, TLS: tls.Bool, ServerName: serverName.String,
				Unhealthy: unhealthy.Bool})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.Fail("list", "daemons", err)
	}
	return ds, nil
}
