package prefork

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

const sigTerm = syscall.SIGTERM

// startProcess forks and execs one worker through the shim: the listeners
// become fds 3.., stdout and stderr are pipes, and the worker gets a
// parent-death signal and its own process group (so a terminal's ^C reaches
// the master only, which then drains in order). The pipes' read ends and a
// pidfd of the worker go to the pool's pump, which writes the output to
// Config.Output and tells the pool once the worker has exited. maxReq is the
// worker's own max_requests limit (0: unlimited).
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	w, err := startWatched(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Command[0], err)
	}
	proc := cmd.Process
	w.owner = p
	w.exited = func() { p.workerExited(exitEvent{pid: proc.Pid, proc: proc}) }
	if c.Output != nil {
		for i, name := range streamNames {
			w.out[i] = c.Output(proc.Pid, name)
		}
	}
	if err := p.pump.add(w); err != nil {
		// Cannot happen while the pool runs: it holds the pump open.
		w.close()
		_ = killGroup(proc.Pid)
		_, _ = proc.Wait()
		return nil, fmt.Errorf("watch worker %d: %w", proc.Pid, err)
	}
	return proc, nil
}

// startWatched starts cmd with its stdout and stderr on pipes and returns a
// watch of the read ends and a pidfd of the process, for a pump. It sets
// cmd's Stdout, Stderr and SysProcAttr.PidFD.
func startWatched(cmd *exec.Cmd) (*watch, error) {
	// Raw pipes, not os.Pipe: the read ends are for the pump's epoll
	// instance, not the runtime's poller; the write ends stay blocking, as a
	// process expects of its stdout.
	var pipes [2][2]int
	for i := range pipes {
		if err := unix.Pipe2(pipes[i][:], unix.O_CLOEXEC); err != nil {
			for _, pp := range pipes[:i] {
				unix.Close(pp[0])
				unix.Close(pp[1])
			}
			return nil, fmt.Errorf("%s pipe: %w", streamNames[i], err)
		}
	}
	outW := os.NewFile(uintptr(pipes[0][1]), "stdout")
	errW := os.NewFile(uintptr(pipes[1][1]), "stderr")
	cmd.Stdout, cmd.Stderr = outW, errW
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	pidfd := -1
	cmd.SysProcAttr.PidFD = &pidfd
	err := cmd.Start()
	outW.Close() // the process holds the write ends now
	errW.Close()
	if err != nil {
		unix.Close(pipes[0][0])
		unix.Close(pipes[1][0])
		return nil, err
	}
	return &watch{pid: cmd.Process.Pid, fds: [3]int{pipes[0][0], pipes[1][0], pidfd}}, nil
}

// workerEnv is the master's environment without another supervisor's
// protocol variables, then the daemon's env, then the protocol's.
func (p *Pool) workerEnv(slot, maxReq int) []string {
	c := &p.cfg
	drop := []string{proto.EnvListenFDs, proto.EnvListenPID, proto.EnvListenFDNames, proto.EnvNotifySocket, proto.EnvWatchdogUSec, proto.EnvWatchdogPID, proto.EnvMaxRequests}
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
		proto.EnvListenFDs+"="+strconv.Itoa(len(c.Listeners)),
		proto.EnvListenFDNames+"="+strings.Join(names, ":"),
		proto.EnvDaemon+"="+c.Name,
		proto.EnvWorker+"="+strconv.Itoa(slot),
		proto.EnvNode+"="+c.Node,
	)
	if p.nsock != nil {
		env = append(env, proto.EnvNotifySocket+"="+p.nsock.path)
	}
	if c.Watchdog > 0 {
		env = append(env, proto.EnvWatchdogUSec+"="+strconv.FormatInt(c.Watchdog.Microseconds(), 10))
	}
	if maxReq > 0 {
		env = append(env, proto.EnvMaxRequests+"="+strconv.Itoa(maxReq))
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
