package config

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// RunAs is the user the master runs as, which decides what a configuration
// may do: a master running as root refuses files and directories that
// other users could write (they would decide what runs as root), and one
// that is not root cannot switch its workers to another user. Load checks
// for the current user; CheckAs for any.
type RunAs struct {
	UID  int
	GID  int
	Name string // the user's name, for messages; empty if unknown
}

// CurrentUser is the RunAs of this process's effective user.
func CurrentUser() RunAs {
	r := RunAs{UID: os.Geteuid(), GID: os.Getegid()}
	if u, err := user.LookupId(strconv.Itoa(r.UID)); err == nil {
		r.Name = u.Username
	}
	return r
}

// LookupGroup finds a group's gid by name, or takes name as the gid when it
// is a number.
func LookupGroup(name string) (int, error) { return lookupGroup(name) }

// LookupRunAs finds a user by name or numeric uid.
func LookupRunAs(name string) (RunAs, error) {
	u, err := lookupUser(name)
	if err != nil {
		return RunAs{}, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return RunAs{UID: uid, GID: gid, Name: u.Username}, nil
}

// CheckUser is the user `nsfd check` checks etcDir for when it is not told:
// root when the caller is root or etcDir belongs to root (a system install,
// whose master runs as root), else the caller.
func CheckUser(etcDir string) RunAs {
	self := CurrentUser()
	if self.IsRoot() {
		return self
	}
	if fi, err := os.Stat(etcDir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 {
			return RunAs{UID: 0, GID: 0, Name: "root"}
		}
	}
	return self
}

// IsRoot tells whether the master runs as root.
func (r RunAs) IsRoot() bool { return r.UID == 0 }

// String renders the user as "root (uid 0)", or "uid 1000" without a name.
func (r RunAs) String() string {
	if r.Name == "" {
		return fmt.Sprintf("uid %d", r.UID)
	}
	return fmt.Sprintf("%s (uid %d)", r.Name, r.UID)
}

// The user database, a seam for tests.
var (
	lookupUser  = lookupUserOS
	lookupGroup = lookupGroupOS
)

// lookupUserOS finds a user by name, or by uid when name is a number.
func lookupUserOS(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		u, err := user.LookupId(name)
		if err != nil {
			return nil, fmt.Errorf("no user with uid %s", name)
		}
		return u, nil
	}
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return nil, fmt.Errorf("no user %q", name)
	}
	return u, err
}

// lookupGroupOS finds a group's gid by name, or takes name as the gid when
// it is a number.
func lookupGroupOS(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%d is not a gid", n)
		}
		return n, nil
	}
	g, err := user.LookupGroup(name)
	var unknown user.UnknownGroupError
	if errors.As(err, &unknown) {
		return 0, fmt.Errorf("no group %q", name)
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
