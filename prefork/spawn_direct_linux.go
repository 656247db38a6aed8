//go:build linux && cgo

package prefork

/*
#include <stdlib.h>
#include "spawn_direct_linux.h"
*/
import "C"

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

// haveDirectSpawn: this build forks workers itself (spawn_direct_linux.c).
const haveDirectSpawn = true

// clonedIntoCgroup counts the children cloned straight into their cgroup2
// group (CLONE_INTO_CGROUP), for the tests.
var clonedIntoCgroup atomic.Int64

// cAlloc holds the C memory of one spawn request, freed at once after it.
type cAlloc struct{ ptrs []unsafe.Pointer }

func (a *cAlloc) str(s string) *C.char {
	p := C.CString(s)
	a.ptrs = append(a.ptrs, unsafe.Pointer(p))
	return p
}

// strs is a NULL-terminated array of C strings.
func (a *cAlloc) strs(ss []string) **C.char {
	arr := (*[1 << 28]*C.char)(a.mem(uintptr(len(ss)+1) * unsafe.Sizeof((*C.char)(nil))))[: len(ss)+1 : len(ss)+1]
	for i, s := range ss {
		arr[i] = a.str(s)
	}
	arr[len(ss)] = nil
	return &arr[0]
}

func (a *cAlloc) ints(v []int) *C.int {
	arr := (*[1 << 28]C.int)(a.mem(uintptr(max(len(v), 1)) * C.sizeof_int))[:len(v):len(v)]
	for i, x := range v {
		arr[i] = C.int(x)
	}
	return (*C.int)(unsafe.Pointer(unsafe.SliceData(arr)))
}

func (a *cAlloc) mem(n uintptr) unsafe.Pointer {
	p := C.calloc(1, C.size_t(n))
	a.ptrs = append(a.ptrs, p)
	return p
}

func (a *cAlloc) free() {
	for _, p := range a.ptrs {
		C.free(p)
	}
}

// spawnDirect forks and execs d's program with fds as its descriptors 0,
// 1, 2, 3…, and env as its environment (LISTEN_PID, and WATCHDOG_PID when
// there is a watchdog, are set to the child's pid by the child itself). It
// returns the child's pid and a pidfd of it (-1 if the kernel has none).
// A step that failed in the child (a control group, a credential, the
// exec) is childErr, with pid set: the child has exited 127 and is the
// caller's to reap, as if it had failed in the exec shim.
func spawnDirect(d *DirectExec, env []string, fds []int) (pid, pidfd int, childErr, err error) {
	var a cAlloc
	defer a.free()
	s := (*C.struct_nsfd_spawn)(a.mem(C.sizeof_struct_nsfd_spawn))

	env = append(env[:len(env):len(env)], proto.EnvListenPID+"=") // a copy: never the caller's array
	s.listen_pid, s.watchdog_pid = -1, -1
	s.listen_pid = C.int(len(env) - 1)
	for _, kv := range env {
		if strings.HasPrefix(kv, proto.EnvWatchdogUSec+"=") {
			env = append(env, proto.EnvWatchdogPID+"=")
			s.watchdog_pid = C.int(len(env) - 1)
			break
		}
	}
	paths := execPaths(d.Command[0], env)
	s.paths = a.strs(paths)
	s.argv = a.strs(d.Command)
	s.envp = a.strs(env)
	s.fds, s.nfds = a.ints(fds), C.int(len(fds))
	for _, fd := range fds {
		s.max_fd = max(s.max_fd, C.int(fd))
	}
	s.cgroups, s.ncgroups = a.strs(d.Cgroups), C.int(len(d.Cgroups))
	s.cgroup_fd, s.cgroup_skip = -1, -1
	if d.IntoCgroup != "" {
		// Born in its cgroup2 group (CLONE_INTO_CGROUP) rather than moved
		// there by the child: no migration. The child still writes the
		// group's cgroup.procs where the clone cannot place it.
		if i := slices.Index(d.Cgroups, filepath.Join(d.IntoCgroup, "cgroup.procs")); i >= 0 {
			if fd, err := unix.Open(d.IntoCgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
				defer unix.Close(fd)
				s.cgroup_fd, s.cgroup_skip = C.int(fd), C.int(i)
			}
		}
	}
	o := d.Exec
	if n := len(o.Rlimits); n > 0 {
		res := (*[64]C.int)(a.mem(uintptr(n) * C.sizeof_int))[:n:n]
		val := (*[64]C.uint64_t)(a.mem(uintptr(n) * 8))[:n:n]
		i := 0
		for name, v := range o.Rlimits {
			r, ok := rlimitNames[name]
			if !ok {
				return 0, -1, nil, fmt.Errorf("unknown rlimit %q", name)
			}
			res[i], val[i] = C.int(r), C.uint64_t(v)
			i++
		}
		s.rlimit_res, s.rlimit_val, s.nrlimits = &res[0], &val[0], C.int(n)
	}
	if o.Chroot != "" {
		s.chroot_dir = a.str(o.Chroot)
	}
	if o.Dir != "" {
		s.dir = a.str(o.Dir)
	}
	s.umask = C.int(o.Umask)
	if o.UID >= 0 || o.GID >= 0 {
		s.set_creds, s.uid, s.gid = 1, C.int(o.UID), C.int(o.GID)
		if n := len(o.Groups); n > 0 {
			g := (*[1 << 16]C.uint32_t)(a.mem(uintptr(n) * 4))[:n:n]
			for i, x := range o.Groups {
				g[i] = C.uint32_t(x)
			}
			s.groups, s.ngroups = &g[0], C.int(n)
		}
	}
	s.ppid = C.int(d.PPID)

	var r C.pid_t
	onMainThread(func() { r = C.nsfd_spawn(s) })
	if r < 0 {
		return 0, -1, nil, fmt.Errorf("clone: %w", syscall.Errno(-r))
	}
	pid, pidfd = int(r), int(s.pidfd)
	if s.placed != 0 {
		clonedIntoCgroup.Add(1)
	}
	if s.step != C.NSFD_STEP_NONE {
		childErr = stepError(s, d, paths)
	}
	return pid, pidfd, childErr, nil
}

// stepError is the error of the child's failed step, worded as the exec
// shim words it.
func stepError(s *C.struct_nsfd_spawn, d *DirectExec, paths []string) error {
	e := syscall.Errno(s.err)
	i := int(s.arg)
	switch s.step {
	case C.NSFD_STEP_FDS:
		return fmt.Errorf("arrange descriptors: %w", e)
	case C.NSFD_STEP_PGID:
		return fmt.Errorf("set process group: %w", e)
	case C.NSFD_STEP_PDEATHSIG:
		return fmt.Errorf("set parent-death signal: %w", e)
	case C.NSFD_STEP_MASTER_GONE:
		return fmt.Errorf("master is gone")
	case C.NSFD_STEP_CGROUP:
		return fmt.Errorf("join control group: open %s: %w", d.Cgroups[min(i, len(d.Cgroups)-1)], e)
	case C.NSFD_STEP_RLIMIT:
		return fmt.Errorf("set rlimit: %w", e)
	case C.NSFD_STEP_CHROOT:
		return fmt.Errorf("chroot %s: %w", d.Exec.Chroot, e)
	case C.NSFD_STEP_CHDIR:
		if i == 0 {
			return fmt.Errorf("chdir / in chroot: %w", e)
		}
		return fmt.Errorf("chdir: %s: %w", d.Exec.Dir, e)
	case C.NSFD_STEP_SETGROUPS:
		return fmt.Errorf("setgroups: %w", e)
	case C.NSFD_STEP_SETGID:
		return fmt.Errorf("setgid %d: %w", d.Exec.GID, e)
	case C.NSFD_STEP_SETUID:
		return fmt.Errorf("setuid %d: %w", d.Exec.UID, e)
	}
	p := d.Command[0]
	if i < len(paths) && strings.Contains(d.Command[0], "/") {
		p = paths[i]
	}
	return fmt.Errorf("exec %s: %w", p, e)
}

// execPaths is where the child looks for program, as exec.LookPath (the
// exec shim's) would in env's PATH: program itself if it names a path,
// else each absolute PATH entry (a relative one is exec.ErrDot).
func execPaths(program string, env []string) []string {
	if strings.Contains(program, "/") {
		return []string{program}
	}
	var path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var out []string
	for _, dir := range filepath.SplitList(path) {
		if filepath.IsAbs(dir) {
			out = append(out, filepath.Join(dir, program))
		}
	}
	if len(out) == 0 {
		out = []string{program} // not found: execve says so
	}
	return out
}
