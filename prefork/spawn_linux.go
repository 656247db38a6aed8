package prefork

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const sigTerm = syscall.SIGTERM

// startProcess forks and execs one worker through the shim: the listeners
// become fds 3.., stdout and stderr are pipes read by Config.Output, and
// the worker gets a parent-death signal and its own process group (so a
// terminal's ^C reaches the master only, which then drains in order).
// maxReq is the worker's own max_requests limit (0: unlimited).
func (p *Pool) startProcess(slot, maxReq int) (*os.Process, error) {
	c := &p.cfg
	args := append([]string{}, c.Shim[1:]...)
	args = append(args, "-ppid", strconv.Itoa(os.Getpid()))
	args = append(args, c.Exec.shimArgs()...)
	args = append(args, "--")
	args = append(args, c.Command...)
	cmd := exec.Command(c.Shim[0], args...)
	cmd.Env = p.workerEnv(slot, maxReq)
	for _, l := range c.Listeners {
		cmd.ExtraFiles = append(cmd.ExtraFiles, l.File())
	}
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, PidFD: &pidfd}

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start %s: %w", c.Command[0], err)
	}
	pid := cmd.Process.Pid
	output := c.Output // p.cfg may be replaced by Update while the streams are read
	for _, s := range []struct {
		name string
		r    *os.File
	}{{"stdout", outR}, {"stderr", errR}} {
		go func() {
			defer s.r.Close()
			if output != nil {
				output(pid, s.name, s.r)
			} else {
				_, _ = io.Copy(io.Discard, s.r)
			}
		}()
	}
	go func() {
		// Park on the runtime's poller until the worker exits, so a thousand
		// workers cost a thousand parked goroutines, not a thousand threads
		// blocked in wait. The loop reaps it.
		if !awaitExit(pidfd) {
			var info unix.Siginfo
			for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
			}
		}
		p.exits <- exitEvent{pid: pid, cmd: cmd}
	}()
	return cmd.Process, nil
}

// awaitExit waits, without holding a thread and without reaping, until the
// process behind pidfd has exited, and closes pidfd. It reports false if it
// could not wait that way.
func awaitExit(pidfd int) bool {
	if pidfd < 0 {
		return false
	}
	if err := syscall.SetNonblock(pidfd, true); err != nil {
		syscall.Close(pidfd)
		return false
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	exited := false
	err = rc.Read(func(fd uintptr) bool {
		// A pidfd polls readable once its process has exited.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, perr := unix.Poll(fds, 0)
		exited = perr == nil && n > 0 && fds[0].Revents != 0
		return perr != nil || exited
	})
	return err == nil && exited
}

// workerEnv is the master's environment without another supervisor's
// protocol variables, then the daemon's env, then the protocol's.
func (p *Pool) workerEnv(slot, maxReq int) []string {
	c := &p.cfg
	drop := []string{EnvListenFDs, EnvListenPID, EnvListenFDNames, EnvNotifySocket, EnvWatchdogUSec, EnvWatchdogPID, EnvMaxRequests}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, k) {
			env = append(env, kv)
		}
	}
	env = append(env, c.Env...)
	names := make([]string, len(c.Listeners))
	for i := range names {
		names[i] = c.Name
	}
	env = append(env,
		EnvListenFDs+"="+strconv.Itoa(len(c.Listeners)),
		EnvListenFDNames+"="+strings.Join(names, ":"),
		EnvDaemon+"="+c.Name,
		EnvWorker+"="+strconv.Itoa(slot),
		EnvNode+"="+c.Node,
	)
	if p.nsock != nil {
		env = append(env, EnvNotifySocket+"="+p.nsock.path)
	}
	if c.Watchdog > 0 {
		env = append(env, EnvWatchdogUSec+"="+strconv.FormatInt(c.Watchdog.Microseconds(), 10))
	}
	if maxReq > 0 {
		env = append(env, EnvMaxRequests+"="+strconv.Itoa(maxReq))
	}
	return env
}

// killGroup sends SIGKILL to the worker's process group, so what it forked dies with it.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		return syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// exitInfo returns the exit code (-1 if signalled) and the signal name.
func exitInfo(st *os.ProcessState) (int, string) {
	if st == nil {
		return -1, ""
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return st.ExitCode(), ""
}

func describeExit(code int, sig string) string {
	if sig != "" {
		return "signal " + sig
	}
	return "status " + strconv.Itoa(code)
}

func sortWorkers(ws []WorkerStatus) {
	slices.SortFunc(ws, func(a, b WorkerStatus) int { return a.Slot - b.Slot })
}
