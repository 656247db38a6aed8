package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/config"
)

func newRunCmd(m *Main) *cobra.Command {
	var logStderr bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "run the master in the foreground on etc/ (SIGTERM drains and exits)",
		Long: `Run the master in the foreground: start every daemon of etc/, serve the control
socket, apply every change to etc/. SIGTERM and SIGINT drain the daemons and
exit 0; SIGHUP reloads; SIGUSR1 reopens the log; SIGTTIN/SIGTTOU scale every
daemon by one.

A missing or unreadable etc/ is refused at once. On a terminal (and not under
a service manager) it prints a start-up summary (daemons, listeners, the log,
the control socket) and then the warnings and errors of the central log.`,
		Example: "  nsfd run --etc etc\n  nsfd run --etc /etc/nsfd --log-stderr",
		Args:    nargs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkEtcDir(m.Etc); err != nil {
				return err
			}
			return m.master(cmd.Context(), m.Etc, logStderr)
		},
	}
	cmd.Flags().BoolVar(&logStderr, "log-stderr", false, "write the central log to stderr")
	return cmd
}

// checkEtcDir refuses an etc/ that is missing, not a directory or not
// readable, before anything is created beside it.
func checkEtcDir(etc string) error {
	fi, err := os.Stat(etc)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("configuration directory %s does not exist (--etc DIR, or $NSFD_ETC)", etc)
	case err != nil:
		return fmt.Errorf("configuration directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("configuration directory %s is not a directory", etc)
	}
	f, err := os.Open(etc)
	if err == nil {
		_, err = f.ReadDir(1)
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("configuration directory %s cannot be read: %w", etc, err)
	}
	return nil
}

func newCheckCmd(m *Main) *cobra.Command {
	var asName string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "validate etc/ and print every error, for a master running as USER",
		Long: `Validate etc/ as the master would load it, and print every error as
FILE:LINE: key "k": what is wrong. Exits 1 if there is one.`,
		Example: "  nsfd check\n  nsfd check --etc /etc/nsfd --as root",
		Args:    nargs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return m.check(cmd, asName)
		},
	}
	cmd.Flags().StringVar(&asName, "as", "", "check for a master running as this user (default: root if etc/ belongs to root or you are root, else you)")
	return cmd
}

func (m *Main) check(cmd *cobra.Command, asName string) error {
	etc := m.Etc
	if err := checkEtcDir(etc); err != nil {
		return err
	}
	as := config.CheckUser(etc)
	if asName != "" {
		var err error
		if as, err = config.LookupRunAs(asName); err != nil {
			return usagef(cmd, "--as %s: %v", asName, err)
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
