package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/web"
	"github.com/nsfd/nsfd/wire"
)

// webPage is the master's status page (package web) for mc: its users
// from http_users, the central log file when the log goes to one, and the
// fleet when the registry is PostgreSQL.
func webPage(mc *config.Master, log hclog.Logger) (*web.Page, error) {
	o := web.Options{Log: log.Named("web")}
	if mc.HTTPAddr != "" && mc.HTTPUsers != "" {
		users, err := wire.LoadTokens(mc.HTTPUsers)
		if err != nil {
			return nil, fmt.Errorf("http_users: %w", err)
		}
		o.Users = users
	}
	if mc.Log.Target == logging.TargetFile {
		o.LogFile = mc.Log.File
	}
	if mc.Registry.Type == registry.TypePostgres {
		o.Fleet = func(ctx context.Context) ([]web.FleetNode, error) {
			nodes, _, _, err := loadFleet(ctx, mc)
			if err != nil {
				return nil, err
			}
			out := make([]web.FleetNode, 0, len(nodes))
			for _, n := range nodes {
				wn := web.FleetNode{Node: n.Node, Stale: n.Stale, HeartbeatAge: n.HeartbeatAge}
				for _, d := range n.Daemons {
					wd := web.FleetDaemon{Name: d.Name, State: d.State, Stale: d.Stale}
					for _, e := range d.Endpoints {
						wd.Endpoints = append(wd.Endpoints, e.Proto+" "+e.Address)
					}
					wn.Daemons = append(wn.Daemons, wd)
				}
				out = append(out, wn)
			}
			return out, nil
		}
	}
	return web.New(o)
}
