// Command nsfd is the nsfd master and its command-line client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/supervisor"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = ""

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == prefork.ShimArg {
		err := prefork.RunShim(os.Args[2:])
		fmt.Fprintln(os.Stderr, "nsfd exec:", err)
		os.Exit(127)
	}
	// The main goroutine serves the main thread (see upgrade.go); the
	// command runs in another.
	go func() { os.Exit(NewMain().Run(context.Background(), os.Args[1:])) }()
	prefork.ServeMainThread()
}

// Main is the CLI: verbs, flags and exit codes; the work is in the packages.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
}

// NewMain returns a Main on the process's stdout and stderr.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

// usageError is an error in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// maxServersLimit is config.MaxServersLimit, for the usage texts.
var maxServersLimit = strconv.Itoa(config.MaxServersLimit)

var usage = `usage: nsfd [--etc DIR] COMMAND [flags]

commands:
  run                      run the master in the foreground on etc/ (SIGTERM drains and exits)
  check [--as USER]        validate etc/ and print every error, for a master running as USER
  status [NAME] [--json]   daemons, listeners, workers, config errors
  reload                   re-read etc/ and apply the difference (also SIGHUP, or any file change)
  upgrade [--binary PATH]  re-execute nsfd (or PATH) in place of the master: same pid, workers and
                           listeners kept (also SIGUSR2)
  start|stop|restart NAME  a daemon; restart rolls its workers without dropping a connection
  scale NAME +N|-N|N       move min_servers and max_servers together (by N, or to min_servers N);
                           max_servers stays at most ` + maxServersLimit + ` (SIGTTIN/SIGTTOU: all daemons by 1)
  resolve NAME [--json]    a daemon's endpoints, from the registry (works with the master down)
  call NAME COMMAND [DATA-JSON] [--json]
                           send a request to a daemon by name and print the response
  fleet [--json]           every node in the registry, its heartbeat, its daemons (works with no master running)
  token USER [--out FILE]  a token for USER: its credential, and the line of a daemon's tokens file
  logs [-f] [-n N] [--daemon NAME] [--json]
                           the central log's last lines; -f follows it across rotation
  service ACTION           install|uninstall|start|stop|restart|status nsfd as a systemd/launchd service
  version                  print the version

--etc DIR is accepted by every command; default $NSFD_ETC, else ./etc.
`

// Run runs one command line and returns the exit status.
func (m *Main) Run(ctx context.Context, args []string) int {
	err := m.run(ctx, args)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "nsfd: %s\n\n%s", ue.msg, usage)
		return exitUsage
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(m.Stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(m.Stderr, "nsfd: %v\n", err)
		return exitFailure
	}
}

func defaultEtc() string {
	if e := os.Getenv("NSFD_ETC"); e != "" {
		return e
	}
	return "etc"
}

// flags returns a flag set with --etc, for a verb.
func (m *Main) flags(verb string, etc *string) *flag.FlagSet {
	fs := flag.NewFlagSet("nsfd "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(etc, "etc", *etc, "configuration directory")
	return fs
}

func (m *Main) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return nil
}

func (m *Main) run(ctx context.Context, args []string) error {
	etc := defaultEtc()
	global := m.flags("", &etc)
	if err := m.parse(global, args); err != nil {
		return err
	}
	args = global.Args()
	if len(args) == 0 {
		return &usageError{"no command"}
	}
	verb, args := args[0], args[1:]
	switch verb {
	case "run":
		return m.runMaster(ctx, etc, args)
	case "check":
		return m.check(etc, args)
	case "resolve":
		return m.resolve(ctx, etc, args)
	case "call":
		return m.call(ctx, etc, args)
	case "fleet":
		return m.fleet(ctx, etc, args)
	case "token":
		return m.token(etc, args)
	case "logs":
		return m.logs(ctx, etc, args)
	case "service":
		return m.service(ctx, etc, args)
	case "upgrade":
		return m.upgrade(ctx, etc, args)
	case supervisor.PreflightArg:
		return m.upgradePreflight(etc, args)
	case "status", "reload", "start", "stop", "restart", "scale":
		return m.ctlVerb(ctx, verb, etc, args)
	case "version":
		fs := m.flags(verb, &etc)
		if err := m.parse(fs, args); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "nsfd %s (%s %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(m.Stdout, usage)
		return nil
	case supervisor.BuiltinArg:
		return runBuiltin(ctx, args)
	}
	return &usageError{fmt.Sprintf("unknown command %q", verb)}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func (m *Main) check(etc string, args []string) error {
	fs := m.flags("check", &etc)
	asName := fs.String("as", "", "check for a master running as this user (default: root if etc/ belongs to root or you are root, else you)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	as := config.CheckUser(etc)
	if *asName != "" {
		var err error
		if as, err = config.LookupRunAs(*asName); err != nil {
			return &usageError{fmt.Sprintf("--as %s: %v", *asName, err)}
		}
	}
	if err := config.CheckAs(etc, as); err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(m.Stderr, e)
			}
			return fmt.Errorf("%s: %d error(s), checked for a master running as %s", etc, len(es), as)
		}
		return err
	}
	set, err := config.LoadAs(etc, as)
	if err != nil {
		return err
	}
	for _, d := range set.Daemons {
		for _, w := range d.Warnings {
			fmt.Fprintln(m.Stderr, "warning:", w)
		}
	}
	fmt.Fprintf(m.Stdout, "%s: ok, %d daemon(s), checked for a master running as %s\n", etc, len(set.Daemons), as)
	return nil
}

func (m *Main) runMaster(ctx context.Context, etc string, args []string) error {
	fs := m.flags("run", &etc)
	logStderr := fs.Bool("log-stderr", false, "write the central log to stderr")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{"run takes no arguments"}
	}
	return m.master(ctx, etc, *logStderr)
}
