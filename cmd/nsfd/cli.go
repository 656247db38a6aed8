package main

// The command tree. Every verb is a function in verbs that returns its
// *cobra.Command (one file per verb or family: ctl.go, call.go, logs.go,
// ...); adding a verb is writing such a function and adding it to verbs.
// Usage errors, "not running", "unknown daemon" and the other exit codes are
// decided here, in Run, from the error a verb returns (docs/cli.md).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes (docs/cli.md).
const (
	exitOK         = 0
	exitFailure    = 1
	exitUsage      = 2
	exitNotRunning = 3 // status: the daemon (or the master) is not running
	exitNoDaemon   = 4 // no daemon of that name
)

// verbs are the commands of nsfd, in the order `nsfd --help` lists them.
var verbs = []func(m *Main) *cobra.Command{
	newRunCmd,
	newCheckCmd,
	newStatusCmd,
	newReloadCmd,
	newStartCmd,
	newStopCmd,
	newRestartCmd,
	newScaleCmd,
	newUpgradeCmd,
	newPreflightCmd,
	newResolveCmd,
	newCallCmd,
	newFleetCmd,
	newTokenCmd,
	newLogsCmd,
	newServiceCmd,
	newVersionCmd,
}

// usageError is an error in the command line: exit status 2.
type usageError struct {
	msg string
	cmd *cobra.Command // the verb, for "see nsfd VERB --help"; nil: the root
}

func (e *usageError) Error() string { return e.msg }

// usagef is a usage error of cmd.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), cmd: cmd}
}

// exitError is an error with an exit status of its own (exitNotRunning,
// exitNoDaemon); its message, if any, is printed on stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// Run runs one command line and returns the exit status.
func (m *Main) Run(ctx context.Context, args []string) int {
	root := m.newRoot()
	root.SetArgs(negativeNumbersLast(root, args))
	err := root.ExecuteContext(ctx)
	var (
		ue *usageError
		xe *exitError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		see := "nsfd --help"
		use := ""
		if ue.cmd != nil && ue.cmd != root {
			see = ue.cmd.CommandPath() + " --help"
			use = "usage: " + ue.cmd.UseLine() + "; "
		}
		fmt.Fprintf(m.Stderr, "nsfd: %s\n%ssee `%s`\n", ue.msg, use, see)
		return exitUsage
	case errors.As(err, &xe):
		if xe.err != nil {
			fmt.Fprintf(m.Stderr, "nsfd: %v\n", xe.err)
		}
		return xe.code
	case strings.HasPrefix(err.Error(), "accepts "), strings.HasPrefix(err.Error(), "invalid argument "):
		// cobra's own argument checks (completion SHELL).
		fmt.Fprintf(m.Stderr, "nsfd: %v\nsee `nsfd --help`\n", err)
		return exitUsage
	case strings.HasPrefix(err.Error(), "unknown command "):
		// cobra's, with its suggestions on the following lines.
		msg, rest, _ := strings.Cut(err.Error(), "\n")
		msg = strings.Replace(msg, ` for "nsfd"`, "", 1)
		if s := suggestion(rest); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		fmt.Fprintf(m.Stderr, "nsfd: %s\nsee `nsfd --help`\n", msg)
		return exitUsage
	default:
		fmt.Fprintf(m.Stderr, "nsfd: %v\n", err)
		return exitFailure
	}
}

// suggestion is the first of cobra's "Did you mean this?" lines.
func suggestion(rest string) string {
	for _, l := range strings.Split(rest, "\n") {
		if strings.HasPrefix(l, "\t") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// negativeNumbersLast moves the arguments that are negative numbers (`scale
// NAME -1`) behind a "--", where no flag parser takes them for flags; not
// the value of a flag that takes one (`logs -n -1`).
func negativeNumbersLast(root *cobra.Command, args []string) []string {
	var rest, nums []string
	for i, a := range args {
		if a == "--" {
			nums = append(nums, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' && a[1] >= '0' && a[1] <= '9' && (i == 0 || !takesValue(root, args[i-1])) {
			nums = append(nums, a)
			continue
		}
		rest = append(rest, a)
	}
	if len(nums) == 0 {
		return args
	}
	return append(append(rest, "--"), nums...)
}

// takesValue says whether arg is a flag, of any command under root, that
// takes its value from the next argument.
func takesValue(root *cobra.Command, arg string) bool {
	if len(arg) < 2 || arg[0] != '-' || strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	var found bool
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
			f := fs.Lookup(name)
			if f == nil && len(name) == 1 && arg[1] != '-' {
				f = fs.ShorthandLookup(name)
			}
			if f != nil && f.NoOptDefVal == "" {
				found = true
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return found
}

const rootLong = `nsfd runs many small network daemons on one host: a master binds each daemon's
sockets, pre-forks its workers, restarts them with back-off and sends what they
print to one central log. etc/nsfd.ini configures the master; every other
etc/NAME.ini is a daemon named NAME.

Exit codes: 0 ok, 1 failure, 2 usage error, 3 not running (status: the daemon
or the master), 4 no such daemon. See docs/cli.md.`

// newRoot builds the command tree of m.
func (m *Main) newRoot() *cobra.Command {
	cobra.EnableCommandSorting = false // the order of verbs
	root := &cobra.Command{
		Use:           "nsfd",
		Short:         "a pre-forking supervisor of network daemons",
		Long:          rootLong,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Example: `  nsfd run --etc etc            # the master, in the foreground
  nsfd status                   # what runs, on which addresses
  nsfd logs echo -f             # follow one daemon's log`,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	root.SetVersionTemplate(fmt.Sprintf("nsfd {{.Version}} (%s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH))
	root.PersistentFlags().StringVar(&m.Etc, "etc", "", "configuration directory (default $NSFD_ETC, else ./etc)")
	root.PersistentPreRun = func(*cobra.Command, []string) {
		if m.Etc == "" {
			m.Etc = defaultEtc()
		}
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{msg: err.Error(), cmd: cmd}
	})
	for _, v := range verbs {
		root.AddCommand(v(m))
	}
	return root
}

// args returns a cobra.PositionalArgs that wants between min and max
// arguments (max < 0: any number), as a usage error.
func nargs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usagef(cmd, "%s: missing argument", cmd.Name())
		case max >= 0 && len(args) > max:
			return usagef(cmd, "%s: too many arguments (%s)", cmd.Name(), strings.Join(args[max:], " "))
		}
		return nil
	}
}

// jsonFlag adds --json to fs.
func jsonFlag(fs *pflag.FlagSet, p *bool, what string) {
	fs.BoolVar(p, "json", false, what)
}

func newVersionCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print the version",
		Example: "  nsfd version\n  nsfd --version",
		Args:    nargs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(m.Stdout, "nsfd %s (%s %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
