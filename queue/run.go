package queue

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
	"github.com/nsfd/nsfd/worker"
)

// IdleTimeout is how long a queue worker keeps a connection that sends no
// request.
const IdleTimeout = 5 * time.Minute

// purgeEvery is how often Run purges finished jobs older than Retain.
const purgeEvery = time.Hour

// Run is the queue worker: `nsfd __nsfd_builtin queue [flags]`. It opens the
// spool in the registry its environment names (see the package
// documentation; flags override it) and serves the inherited listeners with
// worker.Serve until SIGTERM or ctx ends.
//
// Flags:
//
//	--registry-type TYPE   default $NSFD_REGISTRY_TYPE, else sqlite
//	--registry-dsn DSN     default $NSFD_REGISTRY_DSN
//	--node NAME            default $NSFD_NODE, else the host name
//	--encoding CODEC       default $NSFD_ENCODING, else json
//	--concurrency N        connections served at once (default 256)
//	--max-wait DURATION    longest a wait request is held (default 30s)
//	--retain DURATION      how long finished jobs are kept (default 24h)
func Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	typ := fs.String("registry-type", os.Getenv(worker.EnvRegistryType), "registry type")
	dsn := fs.String("registry-dsn", os.Getenv(worker.EnvRegistryDSN), "registry DSN")
	encoding := fs.String("encoding", os.Getenv(worker.EnvEncoding), "wire codec")
	var o Options
	fs.StringVar(&o.Node, "node", "", "node name of job ids")
	fs.IntVar(&o.Concurrency, "concurrency", DefaultConcurrency, "connections served at once")
	fs.DurationVar(&o.MaxWait, "max-wait", DefaultMaxWait, "longest a wait is held")
	fs.DurationVar(&o.Retain, "retain", DefaultRetain, "how long finished jobs are kept")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("queue: unexpected arguments %q", fs.Args())
	}
	if *typ == "" {
		*typ = registry.TypeSQLite
	}
	if *dsn == "" {
		return fmt.Errorf("queue: no registry: set %s (the master does) or --registry-dsn", worker.EnvRegistryDSN)
	}
	if _, err := wire.Lookup(*encoding); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	o = o.withDefaults()

	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	reg, err := registry.Open(octx, *typ, *dsn)
	cancel()
	if err != nil {
		return fmt.Errorf("queue: open registry %s %s: %w", *typ, registry.Redact(*dsn), err)
	}
	defer reg.Close()
	sp, err := SpoolOf(reg)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	h := NewHandler(sp, o)

	pctx, stopPurge := context.WithCancel(ctx)
	var purger sync.WaitGroup
	purger.Go(func() { purge(pctx, sp, o.Retain) })
	defer func() { stopPurge(); purger.Wait() }()

	sopts := wire.ServerOptions{Codec: *encoding, IdleTimeout: IdleTimeout}
	srv := &worker.Server{
		Handler: worker.HandlerFunc(func(ctx context.Context, c net.Conn) {
			if err := wire.ServeConn(ctx, c, h, sopts); err != nil {
				slog.Warn("queue: connection failed", "error", err)
			}
		}),
		Concurrency: o.Concurrency,
	}
	return srv.Serve(ctx)
}

// purge deletes finished jobs older than retain now and every purgeEvery,
// until ctx ends. Several workers purging at once do no harm.
func purge(ctx context.Context, sp Spool, retain time.Duration) {
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		if n, err := sp.PurgeJobs(ctx, retain); err != nil && ctx.Err() == nil {
			slog.Error("queue: purge failed", "error", err)
		} else if n > 0 {
			slog.Info("queue: purged finished jobs", "jobs", n, "older_than", retain)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
