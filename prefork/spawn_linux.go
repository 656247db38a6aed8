package prefork

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// startWatched starts cmd with its stdout and stderr on pipes and returns a
// watch of the read ends and a pidfd of the process, for a pump. It sets
// cmd's Stdout, Stderr and SysProcAttr.PidFD.
func startWatched(cmd *exec.Cmd) (*watch, error) {
	pipes, err := outputPipes()
	if err != nil {
		return nil, err
	}
	outW := os.NewFile(uintptr(pipes[0][1]), "stdout")
	errW := os.NewFile(uintptr(pipes[1][1]), "stderr")
	cmd.Stdout, cmd.Stderr = outW, errW
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	pidfd := -1
	cmd.SysProcAttr.PidFD = &pidfd
	// On the main thread, which an upgrade's execve keeps (mainthread.go).
	onMainThread(func() { err = cmd.Start() })
	outW.Close() // the process holds the write ends now
	errW.Close()
	if err != nil {
		unix.Close(pipes[0][0])
		unix.Close(pipes[1][0])
		return nil, err
	}
	return &watch{pid: cmd.Process.Pid, fds: [3]int{pipes[0][0], pipes[1][0], pidfd}}, nil
}

// outputPipes makes a worker's stdout and stderr pipes, [stream]{read,
// write}. Raw pipes, not os.Pipe: the read ends are for the pump's epoll
// instance, not the runtime's poller; the write ends stay blocking, as a
// process expects of its stdout.
func outputPipes() ([2][2]int, error) {
	var pipes [2][2]int
	for i := range pipes {
		if err := unix.Pipe2(pipes[i][:], unix.O_CLOEXEC); err != nil {
			for _, pp := range pipes[:i] {
				unix.Close(pp[0])
				unix.Close(pp[1])
			}
			return pipes, fmt.Errorf("%s pipe: %w", streamNames[i], err)
		}
	}
	return pipes, nil
}
