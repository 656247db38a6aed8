package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/supervisor"
)

// master runs the master on etc until ctx ends or a SIGTERM/SIGINT: it
// loads nsfd.ini, prepares the run directory, opens the central log (on
// stderr with logStderr) and the process backend, and hands them to the
// supervisor; signals become its calls.
func (m *Main) master(ctx context.Context, etc string, logStderr bool) error {
	// First: a master re-executed by an upgrade must not die of a SIGHUP
	// (Go's default: exit) sent while it starts; the signals wait here.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTTIN, syscall.SIGTTOU)
	defer signal.Stop(sigs)
	handover, err := supervisor.ReadHandover() // set when an upgrade re-executed this process
	if err != nil {
		return err
	}
	mc, err := config.LoadMaster(etc)
	if err != nil {
		return err
	}
	handover.Pin(mc) // what the workers handed over depend on stays
	if err := supervisor.PrepareRunDir(mc); err != nil {
		return err
	}
	sink, err := logging.Open(logConfig(mc.Log, logStderr))
	if err != nil {
		return fmt.Errorf("open central log: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sink.Close(cctx)
	}()
	procs, backend, err := prefork.OpenBackend(mc.ProcessBackend)
	if err != nil {
		return err
	}
	sink.Logger().Debug("process backend", "backend", backend)
	defer procs.Close() // before the sink: it writes what is left of the workers' output there
	cg := prefork.OpenCgroups(prefork.CgroupOptions{Root: mc.CgroupRoot, Off: os.Getenv("NSFD_CGROUPS") == "off"})
	defer cg.Close() // after the pools: it kills what is left in the groups
	if why := cg.Degraded(); why != "" {
		sink.Logger().Warn("containment degraded: no control groups; workers are contained by the subreaper and their process groups only", "reason", why)
	} else {
		sink.Logger().Info("containment", "cgroups", cg.String())
	}
	page, err := webPage(mc, sink.Logger())
	if err != nil {
		return err
	}
	s, err := supervisor.New(mc, sink, supervisor.Options{Version: version(), Procs: procs, Cgroups: cg, UI: page, Handover: handover, Inherited: systemdSockets()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go handleSignals(ctx, sigs, cancel, s, sink.Logger())
	return s.Run(ctx, m.console(ctx, mc, s, logStderr))
}

// handleSignals turns the master's signals into calls of s until ctx ends:
// SIGTERM and SIGINT cancel (drain and exit), SIGHUP reloads, SIGUSR1
// reopens the log, SIGUSR2 upgrades in place, SIGTTIN/SIGTTOU scale every daemon by one.
func handleSignals(ctx context.Context, sigs <-chan os.Signal, cancel func(), s *supervisor.Supervisor, log hclog.Logger) {
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				log.Info("signal received; draining", "signal", sig.String())
				cancel()
			case syscall.SIGUSR1:
				s.ReopenLogs(ctx)
			case syscall.SIGTTIN, syscall.SIGTTOU:
				delta := 1
				if sig == syscall.SIGTTOU {
					delta = -1
				}
				if _, err := s.Scale(ctx, "", delta, false); err != nil {
					log.Error("scale", "error", err)
				}
			case syscall.SIGHUP:
				s.Reload(ctx)
			case syscall.SIGUSR2: // upgrade.go; its outcome is logged
				go s.Upgrade(ctx, "")
			}
		case <-ctx.Done():
			return
		}
	}
}

// logConfig is the central log's configuration from nsfd.ini's [log]; with
// stderr, the log goes to stderr whatever it says.
func logConfig(l config.Log, stderr bool) logging.Config {
	lc := logging.Config{
		Target:   l.Target,
		File:     l.File,
		Format:   l.Format,
		Level:    l.Level,
		MaxSize:  l.MaxSize,
		MaxFiles: l.MaxFiles,

		SyslogAddr:     l.SyslogAddr,
		SyslogIdent:    l.SyslogIdent,
		SyslogFacility: l.SyslogFacility,
	}
	if stderr {
		lc.Target = logging.TargetStderr
	}
	return lc
}
