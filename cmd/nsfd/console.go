package main

// The foreground master's console: on a terminal, a short start-up summary
// and then the central log's warnings and errors, so that a person who
// typed `nsfd run` sees what happened. Not under a service manager, not
// when stdout is not a terminal: there it stays quiet.

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/supervisor"
)

// underServiceManager says whether a service manager started this process:
// systemd (INVOCATION_ID, NOTIFY_SOCKET) or launchd (XPC_SERVICE_NAME).
func underServiceManager() bool {
	for _, k := range []string{"INVOCATION_ID", "NOTIFY_SOCKET"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	v := os.Getenv("XPC_SERVICE_NAME")
	return v != "" && v != "0"
}

// wantConsole says whether the master prints its console: stdout is a
// terminal and no service manager runs it. $NSFD_CONSOLE=1 forces it, 0
// turns it off (the tests use it).
func (m *Main) wantConsole() bool {
	switch os.Getenv("NSFD_CONSOLE") {
	case "1":
		return true
	case "0":
		return false
	}
	return isTerminal(m.Stdout) && !underServiceManager()
}

// console returns the ready callback of the master's supervisor: nil
// without a console; else it prints the summary once every daemon has
// first started, then follows the central log's warnings and errors (when
// the log is a file and not already on stderr).
func (m *Main) console(ctx context.Context, mc *config.Master, s *supervisor.Supervisor, logStderr bool) func() {
	if !m.wantConsole() {
		return nil
	}
	return func() {
		// Called from the supervisor's loop: ask it from elsewhere.
		go func() {
			st, err := s.Status(ctx, "")
			if err != nil {
				return
			}
			m.printSummary(mc, st, logStderr)
			if !logStderr && mc.Log.Target == logging.TargetFile {
				m.followSerious(ctx, mc.Log.File)
			}
		}()
	}
}

// printSummary prints what the master started and where to look.
func (m *Main) printSummary(mc *config.Master, st supervisor.Status, logStderr bool) {
	fmt.Fprintf(m.Stdout, "nsfd %s: %d daemon(s) on %s\n", cell(st.Version), len(st.Daemons), cell(st.Etc))
	for _, d := range st.Daemons {
		l := strings.Join(d.Listeners, ", ")
		if l == "" {
			l = "no listener"
		}
		fmt.Fprintf(m.Stdout, "  %-12s %-8s %d worker(s)  %s\n", cell(d.Name), cell(d.State), len(d.Workers), cell(l))
	}
	for _, fe := range st.Errors {
		fmt.Fprintf(m.Stdout, "  error: %s\n", cell(fe.Error))
	}
	switch {
	case logStderr:
		fmt.Fprintln(m.Stdout, "log: stderr")
	case mc.Log.Target == logging.TargetFile:
		fmt.Fprintf(m.Stdout, "log: %s (nsfd logs -f)\n", mc.Log.File)
	default:
		fmt.Fprintf(m.Stdout, "log: %s\n", mc.Log.Target)
	}
	fmt.Fprintf(m.Stdout, "control: %s (nsfd status); ^C drains and exits\n", mc.ControlSocket)
}

// followSerious prints the central log's new warnings and errors until ctx
// ends.
func (m *Main) followSerious(ctx context.Context, file string) {
	logging.Tail(ctx, file, logging.FollowOptions{Follow: true,
		Match: func(r logging.Record) bool { return r.Stream == "" && levelRank(r.Level) >= levelRank("warn") }},
		func(line []byte, _ logging.Record) error {
			_, err := fmt.Fprintf(m.Stdout, "%s\n", safeLine(line))
			return err
		})
}
