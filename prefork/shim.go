//go:build unix

package prefork

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

// ShimArg is the first argument that turns the nsfd binary into the exec shim:
// `nsfd __nsfd_exec [flags] -- command args...`. The shim runs in the forked
// worker process itself, sets what os/exec cannot (LISTEN_PID = its own pid,
// which exec keeps), applies the daemon's process settings and execs the
// command in place, so the worker stays a direct child of the master.
const ShimArg = "__nsfd_exec"

// ExecOptions are the process settings the shim applies before exec.
type ExecOptions struct {
	Dir     string            // working directory (inside Chroot, if set)
	Chroot  string            // change root before exec
	Umask   int               // -1: inherited
	UID     int               // -1: unchanged
	GID     int               // -1: unchanged
	Groups  []int             // supplementary groups when UID is set; empty: none
	Rlimits map[string]uint64 // "nofile", "core", ... ; unix.RLIM_INFINITY for unlimited
}

var rlimitNames = map[string]int{
	"as":      unix.RLIMIT_AS,
	"core":    unix.RLIMIT_CORE,
	"cpu":     unix.RLIMIT_CPU,
	"fsize":   unix.RLIMIT_FSIZE,
	"memlock": unix.RLIMIT_MEMLOCK,
	"nofile":  unix.RLIMIT_NOFILE,
	"nproc":   unix.RLIMIT_NPROC,
	"stack":   unix.RLIMIT_STACK,
}

// shimArgs renders o as the shim's flags.
func (o ExecOptions) shimArgs() []string {
	var a []string
	if o.Dir != "" {
		a = append(a, "-cwd", o.Dir)
	}
	if o.Chroot != "" {
		a = append(a, "-chroot", o.Chroot)
	}
	if o.Umask >= 0 {
		a = append(a, "-umask", strconv.FormatInt(int64(o.Umask), 8))
	}
	if o.UID >= 0 {
		a = append(a, "-uid", strconv.Itoa(o.UID))
	}
	if o.GID >= 0 {
		a = append(a, "-gid", strconv.Itoa(o.GID))
	}
	if len(o.Groups) > 0 {
		s := make([]string, len(o.Groups))
		for i, g := range o.Groups {
			s[i] = strconv.Itoa(g)
		}
		a = append(a, "-groups", strings.Join(s, ","))
	}
	for name, v := range o.Rlimits {
		a = append(a, "-rlimit", name+"="+strconv.FormatUint(v, 10))
	}
	return a
}

// RunShim is the exec shim's main: args are the arguments after ShimArg. It
// only returns on error; the caller prints it and exits 127.
func RunShim(args []string) error {
	announceToKeeper()
	fs := flag.NewFlagSet("nsfd "+ShimArg, flag.ContinueOnError)
	var (
		cwd     = fs.String("cwd", "", "")
		chroot  = fs.String("chroot", "", "")
		umask   = fs.String("umask", "", "")
		uid     = fs.Int("uid", -1, "")
		gid     = fs.Int("gid", -1, "")
		groups  = fs.String("groups", "", "")
		ppid    = fs.Int("ppid", 0, "")
		rlimits []string
		cgroups []string
	)
	fs.Func("rlimit", "", func(s string) error { rlimits = append(rlimits, s); return nil })
	fs.Func("cgroup", "", func(s string) error { cgroups = append(cgroups, s); return nil })
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Join the worker's control groups first, while still root: whatever
	// the command starts is born in them.
	for _, f := range cgroups {
		if err := writeFile(f, strconv.Itoa(os.Getpid())); err != nil {
			return fmt.Errorf("join control group: %w", err)
		}
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("no command")
	}
	for _, r := range rlimits {
		name, val, _ := strings.Cut(r, "=")
		res, ok := rlimitNames[name]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", name)
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("rlimit %s: %w", name, err)
		}
		var rl unix.Rlimit
		setLimit(&rl.Cur, &rl.Max, v)
		if err := unix.Setrlimit(res, &rl); err != nil {
			return fmt.Errorf("set rlimit %s=%d: %w", name, v, err)
		}
	}
	// Resolve the program before chroot only when it is not to be found inside it.
	if *chroot != "" {
		if err := unix.Chroot(*chroot); err != nil {
			return fmt.Errorf("chroot %s: %w", *chroot, err)
		}
		if err := os.Chdir("/"); err != nil {
			return fmt.Errorf("chdir / in chroot: %w", err)
		}
	}
	if *cwd != "" {
		if err := os.Chdir(*cwd); err != nil {
			return fmt.Errorf("chdir: %w", err)
		}
	}
	if *uid >= 0 || *gid >= 0 {
		var gs []int
		if *groups != "" {
			for _, g := range strings.Split(*groups, ",") {
				n, err := strconv.Atoi(g)
				if err != nil {
					return fmt.Errorf("groups: %w", err)
				}
				gs = append(gs, n)
			}
		}
		if err := setCredentials(*uid, *gid, gs, *ppid); err != nil {
			return err
		}
	}
	if *umask != "" {
		m, err := strconv.ParseUint(*umask, 8, 32)
		if err != nil {
			return fmt.Errorf("umask: %w", err)
		}
		unix.Umask(int(m))
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	if err := closeInherited(); err != nil {
		return err
	}
	env := os.Environ()
	pid := strconv.Itoa(os.Getpid())
	env = append(env, proto.EnvListenPID+"="+pid)
	if os.Getenv(proto.EnvWatchdogUSec) != "" {
		env = append(env, proto.EnvWatchdogPID+"="+pid)
	}
	if err := syscall.Exec(path, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// setLimit sets both fields of a unix.Rlimit to v, whichever integer type
// the system gives them (FreeBSD's are signed).
func setLimit[T int64 | uint64](cur, max *T, v uint64) { *cur, *max = T(v), T(v) }

// writeFile writes s to a control file, which must exist.
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// listenFDs is the number of listeners the worker gets (LISTEN_FDS).
func listenFDs() int {
	n, err := strconv.Atoi(os.Getenv(proto.EnvListenFDs))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
