package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
)

// logs prints the central log file's last lines and follows it, like tail -F.
func (m *Main) logs(ctx context.Context, etc string, args []string) error {
	fs := m.flags("logs", &etc)
	follow := fs.Bool("f", false, "keep following the log, across rotation")
	lines := fs.Int("n", 10, "last N lines (-1: all)")
	daemon := fs.String("daemon", "", "only this daemon's lines (its workers' output and the master's records about it)")
	asJSON := fs.Bool("json", false, "print each record as a JSON object")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{"usage: nsfd logs [-f] [-n N] [--daemon NAME] [--json]"}
	}
	mc, err := config.LoadMaster(etc)
	if err != nil {
		return err
	}
	if mc.Log.Target != logging.TargetFile {
		return fmt.Errorf("the central log goes to %s, not a file: nsfd logs reads files only", mc.Log.Target)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	jsonFile := mc.Log.Format == logging.FormatJSON
	err = logging.Tail(ctx, mc.Log.File, logging.FollowOptions{Lines: *lines, Follow: *follow, Daemon: *daemon},
		func(line []byte, rec logging.Record) error {
			var out []byte
			if !*asJSON || jsonFile && json.Valid(line) {
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
