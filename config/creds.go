package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotRoot is wrapped by the error for a daemon that sets user, group,
// groups or chroot while the master does not run as root: it could not
// switch its workers to them.
var ErrNotRoot = errors.New("the master is not root")

// failAt records a problem on the daemon file's key (on its first line).
func (l *daemonLoader) failAt(key, msg, hint string, err error) {
	l.errs = append(l.errs, &Error{File: l.path, Line: l.lines["."+key], Key: key, Msg: msg, Hint: hint, Err: err})
}

// failHint records a problem with entry e, with a hint.
func (l *daemonLoader) failHint(e entry, msg, hint string) {
	l.errs = append(l.errs, &Error{File: l.path, Line: e.Line, Key: e.Key, Msg: msg, Hint: hint})
}

// firstSet returns the first of keys that the file sets, or "".
func (l *daemonLoader) firstSet(keys ...string) string {
	for _, k := range keys {
		if l.lines["."+k] > 0 {
			return k
		}
	}
	return ""
}

// resolveCreds sets d.Creds from user, group and groups, as the exec shim
// will apply them, and reports what the master it is loaded for could not
// do: switch users when it is not root, or find a user or group. It tells
// whether the credentials are known.
func (l *daemonLoader) resolveCreds() bool {
	d := l.d
	d.Creds = Creds{UID: -1, GID: -1}
	if !l.as.IsRoot() {
		ok := true
		if k := l.firstSet("user", "group", "groups"); k != "" {
			l.failAt(k, fmt.Sprintf("the master runs as %s, not root, and cannot switch its workers to another user or group", l.as),
				"run nsfd as root, or remove user, group and groups", ErrNotRoot)
			ok = false
		}
		if l.firstSet("chroot") != "" {
			l.failAt("chroot", fmt.Sprintf("the master runs as %s, not root, and cannot chroot its workers", l.as),
				"run nsfd as root, or remove chroot", ErrNotRoot)
			ok = false
		}
		return ok
	}
	if d.User == "" && d.Group == "" {
		if len(d.Groups) > 0 {
			l.failAt("groups", "has no effect without user or group", "set user or group too", nil)
			return false
		}
		return true
	}
	ok := true
	if d.User != "" {
		if u, err := lookupUser(d.User); err != nil {
			l.failAt("user", err.Error(), "", nil)
			ok = false
		} else {
			fmt.Sscan(u.Uid, &d.Creds.UID)
			fmt.Sscan(u.Gid, &d.Creds.GID)
		}
	}
	if d.Group != "" {
		if gid, err := lookupGroup(d.Group); err != nil {
			l.failAt("group", err.Error(), "", nil)
			ok = false
		} else {
			d.Creds.GID = gid
		}
	}
	for _, g := range d.Groups {
		if gid, err := lookupGroup(g); err != nil {
			l.failAt("groups", err.Error(), "", nil)
			ok = false
		} else {
			d.Creds.Groups = append(d.Creds.Groups, gid)
		}
	}
	if d.Creds.UID < 0 { // group alone: the master's uid, without its supplementary groups
		d.Creds.UID = l.as.UID
	}
	return ok
}

// checkReach reports what the workers, under their own credentials, could
// not reach: their notify socket (an error for type = notify or a watchdog,
// which need it; a warning otherwise, as BUSY and STATUS would be lost), and
// a command given by path.
func (l *daemonLoader) checkReach() {
	d := l.d
	c := d.Creds
	if c.UID <= 0 {
		return
	}
	key := l.firstSet("user", "group")
	if d.Chroot == "" && len(d.Command) > 0 && strings.HasPrefix(d.Command[0], "/") {
		if b := searchBlocker(d.Command[0], c); b != nil {
			l.failAt("command", fmt.Sprintf("the workers (%s) cannot reach their program %s: %s does not let them search it", c, d.Command[0], b),
				"chmod o+x it, or give them its group", nil)
		}
	}
	sock := l.m.NotifyPath(d.Name)
	b := searchBlocker(sock, c)
	if b == nil {
		return
	}
	msg := fmt.Sprintf("the workers (%s) cannot reach their notify socket %s: %s does not let them search it", c, sock, b)
	hint := "chmod o+x " + b.dir + ", give them its group, or set run_dir in nsfd.ini to a directory they can reach"
	if d.Type == TypeNotify || d.Watchdog > 0 {
		l.failAt(key, msg, hint, nil)
		return
	}
	d.Warnings = append(d.Warnings, &Error{File: l.path, Line: l.lines["."+key], Key: key,
		Msg: msg + "; their BUSY, STATUS and STOPPING messages would be lost", Hint: hint})
}

// droppedComment returns the text that an inline comment cut off an INI
// value (" ; b" of `command = a ; b`), or "". A value in quotes or
// backquotes followed by a comment counts too: a key whose value is a
// command line takes no comment on its line.
func droppedComment(e entry) string {
	raw := strings.TrimSpace(e.raw)
	if raw == "" || raw == e.Value {
		return ""
	}
	for _, q := range []string{"`", `"""`, `"`, "'"} {
		if raw == q+e.Value+q {
			return ""
		}
	}
	i := strings.Index(raw, e.Value)
	if i < 0 || e.Value == "" {
		return ""
	}
	rest := raw[i+len(e.Value):]
	for _, q := range []string{"`", `"""`, `"`, "'"} {
		if strings.HasPrefix(raw, q) {
			rest = strings.TrimPrefix(rest, q)
			break
		}
	}
	rest = strings.TrimSpace(rest)
	if rest == "" || (rest[0] != ';' && rest[0] != '#') {
		return ""
	}
	return rest
}
