package config

// Checks `nsfd check` makes that a running master does not refuse a file
// for: a program may be installed after its file, and of two daemons on one
// address the first keeps serving while the second reports its bind error.

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
)

// strictCheck adds to the files of all the problems only check reports:
// a program (of the command, an exec health check or a hook) that is
// missing or that whoever runs it may not execute, and two daemons on the
// same address.
func strictCheck(all []*loaded, as RunAs) {
	var clean []*loaded // the files that load
	for _, l := range all {
		if l.d != nil && len(l.errs) == 0 {
			clean = append(clean, l)
		}
	}
	for _, l := range clean {
		d := l.d
		if d.Builtin == "" && d.Chroot == "" {
			if msg := programProblem(d.Command, d.Creds, as); msg != "" {
				l.fail("command", msg, "")
			}
		}
		// A health check runs as the workers do (not chrooted); a hook as
		// the master.
		if d.Health.Kind == HealthExec {
			if msg := programProblem(d.Health.Command, d.Creds, as); msg != "" {
				l.fail("health", msg, "")
			}
		}
		for _, event := range slices.Sorted(maps.Keys(d.Hooks)) {
			if msg := programProblem(d.Hooks[event], Creds{UID: -1, GID: -1}, as); msg != "" {
				l.fail("on_"+event, msg, "")
			}
		}
	}
	owners := map[string][]*loaded{}
	var addrs []string
	for _, l := range clean {
		seen := map[string]bool{}
		for _, ln := range l.d.Listeners {
			key := listenKey(ln)
			if key == "" {
				continue
			}
			if seen[key] {
				continue // the loader reports it
			}
			seen[key] = true
			if owners[key] == nil {
				addrs = append(addrs, key)
			}
			owners[key] = append(owners[key], l)
		}
	}
	for _, key := range addrs {
		ls := owners[key]
		if len(ls) < 2 {
			continue
		}
		for _, l := range ls {
			var others []string
			for _, o := range ls {
				if o != l {
					others = append(others, o.path)
				}
			}
			l.fail("port", fmt.Sprintf("%s is also a listener of %s", key, strings.Join(others, ", ")), "one address, one daemon")
		}
	}
}

// listenKey is the address ln binds, for comparison; "" for one that
// cannot clash (port 0: the system picks one).
func listenKey(ln Listen) string {
	switch ln.Proto {
	case ProtoUnix, ProtoUnixgram:
		return "unix " + ln.Addr
	}
	if strings.HasSuffix(ln.Addr, ":0") {
		return ""
	}
	return ln.Proto + " " + ln.Addr
}

// programProblem says why the program of argv cannot run with creds (as's
// where they leave the user or group unchanged); "" when it can.
func programProblem(argv []string, creds Creds, as RunAs) string {
	if len(argv) == 0 {
		return ""
	}
	prog := argv[0]
	path := prog
	if !strings.Contains(prog, "/") {
		p, err := exec.LookPath(prog)
		if err != nil {
			return fmt.Sprintf("program %q is not found in PATH", prog)
		}
		path = p
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Sprintf("program %s: %v", path, unwrapPath(err))
	case fi.IsDir():
		return fmt.Sprintf("program %s is a directory", path)
	}
	uid, gid, groups := as.UID, as.GID, []int(nil)
	if creds.UID >= 0 {
		uid, groups = creds.UID, creds.Groups
	}
	if creds.GID >= 0 {
		gid = creds.GID
	}
	if !executable(fi, uid, gid, groups) {
		return fmt.Sprintf("program %s (mode %04o) is not executable by the workers (uid %d, gid %d)", path, fi.Mode().Perm(), uid, gid)
	}
	return ""
}

// executable says whether uid (in gid and groups) may execute the file fi.
func executable(fi fs.FileInfo, uid, gid int, groups []int) bool {
	mode := fi.Mode().Perm()
	if uid == 0 {
		return mode&0o111 != 0
	}
	fuid, fgid, ok := fileOwner(fi)
	if !ok {
		return mode&0o111 != 0
	}
	switch {
	case fuid == uid:
		return mode&0o100 != 0
	case fgid == gid || slices.Contains(groups, fgid):
		return mode&0o010 != 0
	}
	return mode&0o001 != 0
}

// fileOwner is fi's owner and group, if the system says.
func fileOwner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
