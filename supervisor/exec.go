package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// BuiltinArg is the first argument that runs one of nsfd's built-in
// workers: `nsfd __nsfd_builtin NAME args...`.
const BuiltinArg = "__nsfd_builtin"

// ErrNotRoot is wrapped by the error for a daemon that sets user or group
// while the master does not run as root: it could not switch to them.
var ErrNotRoot = errors.New("the master is not root")

// execOptions resolves d's user, group and process settings.
func execOptions(d *config.Daemon) (prefork.ExecOptions, error) {
	o := prefork.ExecOptions{
		Dir:     d.Cwd,
		Chroot:  d.Chroot,
		Umask:   d.Umask,
		UID:     -1,
		GID:     -1,
		Rlimits: d.Limits,
	}
	if d.User == "" && d.Group == "" {
		return o, nil
	}
	if os.Geteuid() != 0 {
		return o, fmt.Errorf("%s: user/group set: %w; run nsfd as root or remove them", d.File, ErrNotRoot)
	}
	if d.User != "" {
		u, err := lookupUser(d.User)
		if err != nil {
			return o, fmt.Errorf("%s: user %q: %w", d.File, d.User, err)
		}
		o.UID, _ = strconv.Atoi(u.Uid)
		o.GID, _ = strconv.Atoi(u.Gid)
	}
	if d.Group != "" {
		gid, err := lookupGroup(d.Group)
		if err != nil {
			return o, fmt.Errorf("%s: group %q: %w", d.File, d.Group, err)
		}
		o.GID = gid
	}
	for _, g := range d.Groups {
		gid, err := lookupGroup(g)
		if err != nil {
			return o, fmt.Errorf("%s: groups %q: %w", d.File, g, err)
		}
		o.Groups = append(o.Groups, gid)
	}
	if o.UID < 0 { // group only: stay root, drop supplementary groups
		o.UID = os.Geteuid()
	}
	return o, nil
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

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
