package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
)

func newLogsCmd(m *Main) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs [NAME...]",
		Short: "the central log's last lines; -f follows it across rotation",
		Long: `Print the central log's last lines, of every daemon or of the daemons named
(their workers' output and the master's records about them); -f keeps
following the file across rotation. --since keeps the records from a time on
(a duration back, "10m", or a time, "2026-01-02T15:04:05Z", "15:04"); --level
keeps the master's records of that level or worse and the workers' lines.
An unknown daemon name is an error (exit 4).`,
		Example: `  nsfd logs
  nsfd logs echo -f
  nsfd logs echo kv -n 50 --since 10m --level warn
  nsfd logs --json`,
		ValidArgsFunction: m.completeDaemons(-1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.daemon != "" {
				args = append(args, o.daemon)
			}
			return m.logs(cmd, args, o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.follow, "follow", "f", false, "keep following the log, across rotation")
	fs.IntVarP(&o.lines, "lines", "n", 10, "last N lines (-1: all; default all with --since)")
	fs.StringVar(&o.since, "since", "", "only records from this time on: a duration back (10m) or a time (RFC 3339, 2006-01-02 15:04, 15:04)")
	fs.StringVar(&o.level, "level", "", "only master records of this level or worse (trace, debug, info, warn, error); worker lines are kept")
	fs.StringVar(&o.daemon, "daemon", "", "only this daemon's lines (as NAME)")
	fs.MarkHidden("daemon")
	jsonFlag(fs, &o.asJSON, "print each record as a JSON object")
	cmd.RegisterFlagCompletionFunc("level", cobra.FixedCompletions([]string{"trace", "debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// logsOptions are the flags of `nsfd logs`.
type logsOptions struct {
	follow, asJSON       bool
	lines                int
	since, level, daemon string
}

// levels ranks the log's levels.
var levels = map[string]int{"trace": 1, "debug": 2, "info": 3, "warn": 4, "error": 5}

// levelRank is level's rank; 0 for an unknown one.
func levelRank(level string) int { return levels[strings.ToLower(level)] }

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			y, mo, d := now.Date()
			return time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), 0, time.Local), nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (10m) or a time (2006-01-02T15:04:05Z, 15:04)", s)
}

// logs prints the central log file's last lines and follows it, like tail -F.
func (m *Main) logs(cmd *cobra.Command, names []string, o logsOptions) error {
	ctx := cmd.Context()
	var (
		from  time.Time
		level int
	)
	if o.since != "" {
		var err error
		if from, err = parseSince(o.since, time.Now()); err != nil {
			return usagef(cmd, "%v", err)
		}
		if !cmd.Flags().Changed("lines") {
			o.lines = -1
		}
	}
	if o.level != "" {
		if level = levelRank(o.level); level == 0 {
			return usagef(cmd, "--level %q: want trace, debug, info, warn or error", o.level)
		}
	}
	mc, err := config.LoadMaster(m.Etc)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		known := m.daemonNames(ctx)
		for _, n := range names {
			if !slices.Contains(known, n) {
				return &exitError{exitNoDaemon, fmt.Errorf("logs: no daemon %q in %s or the running master", n, m.Etc)}
			}
		}
	}
	if mc.Log.Target != logging.TargetFile {
		return fmt.Errorf("the central log goes to %s, not a file: nsfd logs reads files only", mc.Log.Target)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fo := logging.FollowOptions{Lines: o.lines, Follow: o.follow}
	if len(names) > 0 || !from.IsZero() || level > 0 {
		fo.Match = func(r logging.Record) bool {
			return (len(names) == 0 || slices.Contains(names, r.Daemon)) &&
				(from.IsZero() || !r.Time.Before(from)) &&
				(level == 0 || r.Stream != "" || levelRank(r.Level) >= level)
		}
	}
	jsonFile := mc.Log.Format == logging.FormatJSON
	err = logging.Tail(ctx, mc.Log.File, fo,
		func(line []byte, rec logging.Record) error {
			var out []byte
			if !o.asJSON || jsonFile && json.Valid(line) {
				out = safeLine(line)
			} else {
				b, err := json.Marshal(recordJSON(rec, line))
				if err != nil {
					return err
				}
				out = logging.JSONEscape(b)
			}
			_, err := fmt.Fprintf(m.Stdout, "%s\n", out)
			return err
		})
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no central log at %s yet (has nsfd run with this --etc?)", mc.Log.File)
	}
	return err
}

// safeLine is a line of the central log as `nsfd logs` prints it, whoever
// wrote the file: a JSON record escaped as JSON (the same value), any other
// line escaped as text. Nothing in it acts on a terminal.
func safeLine(line []byte) []byte {
	if json.Valid(line) {
		return logging.JSONEscape(line)
	}
	return logging.AppendEscaped(nil, line)
}

// recordJSON is the --json shape of a text record.
func recordJSON(rec logging.Record, line []byte) map[string]any {
	if rec.Time.IsZero() {
		return map[string]any{"@message": string(line)}
	}
	out := map[string]any{
		"@timestamp": rec.Time.UTC().Format(time.RFC3339Nano),
		"@level":     rec.Level,
		"@module":    rec.Module,
		"@message":   rec.Message,
	}
	if rec.Daemon != "" {
		out["daemon"] = rec.Daemon
	}
	if rec.PID != 0 {
		out["pid"] = rec.PID
	}
	if rec.Stream != "" {
		out["stream"] = rec.Stream
	}
	for k, v := range rec.Fields {
		if _, taken := out[k]; !taken {
			out[k] = v
		}
	}
	return out
}
