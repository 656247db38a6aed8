package main

// nsfd service: install the master as a system service, a systemd unit on
// Linux or a launchd plist on macOS, through github.com/kardianos/service.
//
// The unit and the plist are rendered here, by serviceSpec.render, and handed
// to kardianos/service whole as its custom template (Option SystemdScript or
// LaunchdConfig). They hold no template action, so kardianos writes them byte
// for byte; it still picks the path and runs systemctl or launchctl.
// `install --root DIR` writes the same rendering under DIR, at the path the
// service manager would read, and runs nothing: what the tests check (and
// init/ holds) is what gets installed.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"
)

// Service names and the service managers nsfd installs under.
const (
	// serviceName is the systemd unit's name: nsfd.service.
	serviceName = "nsfd"
	// launchdLabel is the launchd job's label and its plist's file name.
	launchdLabel = "com.nsfd.nsfd"

	managerSystemd = "systemd"
	managerLaunchd = "launchd"

	// serviceStopTimeout bounds a stop, in seconds: the master drains every
	// daemon (graceful_timeout each, 10s by default, dependents first)
	// before the service manager kills what is left.
	serviceStopTimeout = 30
)

// errNoServiceManager is wrapped when the host runs neither systemd nor
// launchd, so there is nothing to install into or to ask for a status.
var errNoServiceManager = errors.New("no supported service manager")

func newServiceCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service ACTION",
		Short: "install|uninstall|start|stop|restart|status nsfd as a systemd/launchd service",
		Long: `Install nsfd as a system service running "nsfd run --etc DIR" (etc made
absolute): a systemd unit on Linux, a launchd daemon on macOS; then start,
stop, restart or ask its status through the service manager.`,
		Example: `  sudo nsfd service install --etc /etc/nsfd
  sudo nsfd service start
  nsfd service install --user --root /tmp/x   # only write the unit under /tmp/x`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef(cmd, "service: no action (install, uninstall, start, stop, restart, status)")
			}
			return usagef(cmd, "service: unknown action %q (install, uninstall, start, stop, restart, status)", args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	for _, a := range []struct{ action, short string }{
		{"install", "install nsfd as a service (--user: a user unit or agent; --root DIR: only write the file under DIR)"},
		{"uninstall", "stop the service and remove it (with --root: remove the file under DIR)"},
		{"start", "ask the service manager to start nsfd"},
		{"stop", "ask the service manager to stop nsfd (the master drains)"},
		{"restart", "ask the service manager to restart nsfd"},
		{"status", "ask the service manager whether nsfd runs"},
	} {
		var (
			user          bool
			root, manager string
		)
		action := a.action
		sub := &cobra.Command{
			Use:     action,
			Short:   a.short,
			Example: "  nsfd service " + action + " --user",
			Args:    nargs(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return m.service(cmd, action, user, root, manager)
			},
		}
		sub.Flags().BoolVar(&user, "user", false, "a user service (systemd --user unit, launchd agent)")
		if action == "install" || action == "uninstall" {
			sub.Flags().StringVar(&root, "root", "", "only write (or remove) the unit under this directory")
			sub.Flags().StringVar(&manager, "manager", hostManager(), "systemd or launchd, with --root")
		}
		cmd.AddCommand(sub)
	}
	return cmd
}

// service runs `nsfd service ACTION`.
func (m *Main) service(cmd *cobra.Command, action string, user bool, root, manager string) error {
	ctx, etc := cmd.Context(), m.Etc
	if manager != "" && manager != managerSystemd && manager != managerLaunchd {
		return usagef(cmd, "service %s: --manager %q: want systemd or launchd", action, manager)
	}
	if root == "" && manager != "" && manager != hostManager() {
		return usagef(cmd, "service %s: --manager %s needs --root (this host's is %s)", action, manager, hostManager())
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	spec := serviceSpec{Manager: hostManager(), User: user}
	if manager != "" {
		spec.Manager = manager
	}
	if spec.User {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("service %s: %w", action, err)
		}
		spec.Home = home
	}
	if action == "install" {
		if err := spec.resolve(etc); err != nil {
			return fmt.Errorf("service install: %w", err)
		}
	}
	if root != "" {
		return m.serviceInRoot(action, root, spec)
	}

	return m.serviceOnHost(action, spec)
}

// serviceOnHost runs action through kardianos/service, on this host's
// service manager.
func (m *Main) serviceOnHost(action string, spec serviceSpec) error {
	svc, err := spec.kardianos()
	if err != nil {
		return fmt.Errorf("service %s: %w", action, err)
	}
	path := spec.path()
	switch action {
	case "install":
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("service install: %s is already installed; uninstall it first", path)
		}
		if err := svc.Install(); err != nil {
			// Half an install (the file written, enable failed) would make
			// the next attempt fail as "already installed": undo it.
			if _, statErr := os.Stat(path); statErr == nil {
				if svc.Uninstall() != nil {
					os.Remove(path)
				}
			}
			return fmt.Errorf("service install: %s: %w%s", path, err, spec.hint(err, "enable"))
		}
		fmt.Fprintf(m.Stdout, "installed %s: %s run --etc %s\nstart it with: nsfd service start%s\n",
			path, spec.Bin, spec.Etc, userFlag(spec.User))
		return nil
	case "uninstall":
		// systemd's uninstall leaves a running service running: stop it
		// first. An error here (not running, not installed) is the
		// uninstall's to report.
		_ = svc.Stop()
		if err := svc.Uninstall(); err != nil {
			return fmt.Errorf("service uninstall: %s: %w%s", path, err, spec.hint(err, "disable"))
		}
		fmt.Fprintf(m.Stdout, "uninstalled %s\n", path)
		return nil
	case "status":
		st, err := svc.Status()
		if err != nil {
			return fmt.Errorf("service status: %s: %w", spec.name(), err)
		}
		state := "unknown"
		switch st {
		case service.StatusRunning:
			state = "running"
		case service.StatusStopped:
			state = "stopped"
		}
		fmt.Fprintf(m.Stdout, "%s: %s\n", spec.name(), state)
		return nil
	case "start":
		err = svc.Start()
	case "stop":
		err = svc.Stop()
	case "restart":
		err = svc.Restart()
	}
	if err != nil {
		return fmt.Errorf("service %s: %s: %w%s", action, spec.name(), err, spec.hint(err, action))
	}
	return nil
}

// serviceInRoot installs or uninstalls spec under root only: the file, no
// service manager.
func (m *Main) serviceInRoot(action, root string, spec serviceSpec) error {
	path := filepath.Join(root, spec.path())
	if action == "uninstall" {
		if err := os.Remove(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("service uninstall: %s: %w", path, service.ErrNotInstalled)
			}
			return fmt.Errorf("service uninstall: %w", err)
		}
		fmt.Fprintf(m.Stdout, "removed %s\n", path)
		return nil
	}
	text, err := spec.render()
	if err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	// O_EXCL, as kardianos/service refuses to overwrite an installed unit.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("service install: %s is already installed; uninstall it first", path)
		}
		return fmt.Errorf("service install: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("service install: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	fmt.Fprintf(m.Stdout, "wrote %s: %s run --etc %s\n", path, spec.Bin, spec.Etc)
	return nil
}

// hostManager is the service manager of this platform: launchd on macOS,
// systemd elsewhere.
func hostManager() string {
	if runtime.GOOS == "darwin" {
		return managerLaunchd
	}
	return managerSystemd
}

// kardianosSystems maps a manager to the name kardianos/service gives it.
var kardianosSystems = map[string]string{
	managerSystemd: "linux-systemd",
	managerLaunchd: "darwin-launchd",
}

// serviceSpec is one installation of the master as a service.
type serviceSpec struct {
	Manager string // managerSystemd or managerLaunchd
	User    bool   // a user service (systemd user unit, launchd agent), not a system one
	Bin     string // absolute path of the nsfd binary; set by resolve
	Etc     string // absolute etc directory the service runs on; set by resolve
	Home    string // the user's home directory, for User
}

// resolve sets Bin to this binary and Etc to etc, both absolute; etc must be
// a directory.
func (s *serviceSpec) resolve(etc string) error {
	bin, err := selfPath()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(etc)
	if err != nil {
		return fmt.Errorf("etc directory: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("etc directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("etc directory %s: not a directory", abs)
	}
	s.Bin, s.Etc = bin, abs
	return nil
}

// selfPath returns the absolute path of the running nsfd binary, as it was
// invoked when that names this binary (/usr/local/bin/nsfd rather than the
// file a symlink there points to, so the service follows an upgrade that
// moves the link), else as the OS reports it.
func selfPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the nsfd binary: %w", err)
	}
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if p, err := filepath.Abs(p); err == nil {
			a, errA := os.Stat(p)
			b, errB := os.Stat(exe)
			if errA == nil && errB == nil && os.SameFile(a, b) {
				return p, nil
			}
		}
	}
	return exe, nil
}

// label is the service's name in kardianos/service's config: the unit's
// name without ".service", or the launchd label.
func (s serviceSpec) label() string {
	if s.Manager == managerLaunchd {
		return launchdLabel
	}
	return serviceName
}

// name is the service's name for its manager: nsfd.service or the label.
func (s serviceSpec) name() string {
	if s.Manager == managerLaunchd {
		return launchdLabel
	}
	return serviceName + ".service"
}

// kind names the file the manager reads: unit or plist.
func (s serviceSpec) kind() string {
	if s.Manager == managerLaunchd {
		return "plist"
	}
	return "unit"
}

// path is where the service manager reads the unit or plist, the same path
// kardianos/service writes.
func (s serviceSpec) path() string {
	switch {
	case s.Manager == managerLaunchd && s.User:
		return filepath.Join(s.Home, "Library/LaunchAgents", launchdLabel+".plist")
	case s.Manager == managerLaunchd:
		return filepath.Join("/Library/LaunchDaemons", launchdLabel+".plist")
	case s.User:
		return filepath.Join(s.Home, ".config/systemd/user", serviceName+".service")
	default:
		return filepath.Join("/etc/systemd/system", serviceName+".service")
	}
}

// args are the master's arguments.
func (s serviceSpec) args() []string { return []string{"run", "--etc", s.Etc} }

// kardianos returns the kardianos/service handle for s; it fails with
// errNoServiceManager when the host does not run s's manager.
func (s serviceSpec) kardianos() (service.Service, error) {
	found := "none"
	if sys := service.ChosenSystem(); sys != nil {
		found = sys.String()
	}
	if found != kardianosSystems[s.Manager] {
		return nil, fmt.Errorf("%w: %s is not running here (kardianos/service detects %s); nsfd installs under systemd or launchd only; `nsfd service install --root DIR` writes the %s without it",
			errNoServiceManager, s.Manager, found, s.kind())
	}
	opt := service.KeyValue{"UserService": s.User}
	if s.Bin != "" {
		text, err := s.render()
		if err != nil {
			return nil, err
		}
		if s.Manager == managerLaunchd {
			opt["LaunchdConfig"] = text
		} else {
			opt["SystemdScript"] = text
		}
	}
	svc, err := service.New(noProgram{}, &service.Config{
		Name:        s.label(),
		DisplayName: "nsfd",
		Description: "nsfd process supervisor",
		Executable:  s.Bin,
		Arguments:   s.args(),
		Option:      opt,
	})
	if err != nil {
		return nil, fmt.Errorf("kardianos/service: %w", err)
	}
	return svc, nil
}

// noProgram is the kardianos/service program nsfd never runs through it:
// the service's process is `nsfd run`, not a Service.Run.
type noProgram struct{}

var _ service.Interface = noProgram{}

// Start implements service.Interface; it is never called.
func (noProgram) Start(service.Service) error { return nil }

// Stop implements service.Interface; it is never called.
func (noProgram) Stop(service.Service) error { return nil }

// userFlag is " --user" for a user service.
func userFlag(user bool) string {
	if user {
		return " --user"
	}
	return ""
}

// hint explains an error of the service manager's command for action:
// kardianos/service keeps systemctl's exit status but not its message.
func (s serviceSpec) hint(err error, action string) string {
	var ee *exec.ExitError
	failed := errors.As(err, &ee)
	if errors.Is(err, fs.ErrPermission) || failed && !s.User && os.Geteuid() != 0 {
		return " (a system service needs root; or use --user)"
	}
	if failed && s.Manager == managerSystemd {
		return fmt.Sprintf(" (`systemctl%s %s %s` says why)", userFlag(s.User), action, s.name())
	}
	return ""
}
