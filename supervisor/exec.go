package supervisor

import (
	"os"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// BuiltinArg is the first argument that runs one of nsfd's built-in
// workers: `nsfd __nsfd_builtin NAME args...`.
const BuiltinArg = "__nsfd_builtin"

// execOptions turns d's process settings, with the user and group the
// configuration resolved (config.Creds), into the exec shim's options.
func execOptions(d *config.Daemon) prefork.ExecOptions {
	return prefork.ExecOptions{
		Dir:     d.Cwd,
		Chroot:  d.Chroot,
		Umask:   d.Umask,
		UID:     d.Creds.UID,
		GID:     d.Creds.GID,
		Groups:  d.Creds.Groups,
		Rlimits: d.Limits,
	}
}

// lookupGroup finds a group's gid by name or number (control_group).
func lookupGroup(name string) (int, error) { return config.LookupGroup(name) }

// listenSpec turns a config listener into a bind spec; a UNIX socket file
// is given to the worker's user.
func listenSpec(d *config.Daemon, l config.Listen, o prefork.ExecOptions) prefork.ListenSpec {
	s := prefork.ListenSpec{
		Network: l.Network(),
		Address: l.Addr,
		Backlog: d.Backlog,
		Mode:    d.SocketMode,
		UID:     -1,
		GID:     -1,
	}
	if o.UID >= 0 && o.UID != os.Geteuid() {
		s.UID = o.UID
	}
	if o.GID >= 0 {
		s.GID = o.GID
	}
	return s
}
