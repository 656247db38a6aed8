package prefork

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var _ preloadProcs = (*Pump)(nil)

// preloadReplyTimeout bounds how long a fork-server has to answer a fork
// request; the orphan reaper waits for it meanwhile.
const preloadReplyTimeout = 10 * time.Second

// forkPreloaded asks fs for a worker and watches it as Start watches the
// workers it forks itself. The master makes the worker's output FIFOs
// (read ends open first, non-blocking), sends their paths, and unlinks
// them after the reply; from the request until the worker is tracked it
// holds spawnMu, so that the orphan reaper never takes the worker, which
// the double fork made the master's child, for an orphan. A fork-server
// that fails the protocol is stopped: the next spawn starts another.
func (b *Pump) forkPreloaded(ctx context.Context, fs *forkServer, env []string, cgroups []string, c Command) (*Process, error) {
	fs.seq++
	var (
		paths [2]string
		rfds  = [2]int{-1, -1}
	)
	closeAll := func() {
		for i := range rfds {
			if rfds[i] >= 0 {
				unix.Close(rfds[i])
			}
		}
	}
	for i, name := range streamNames {
		paths[i] = filepath.Join(fs.dir, strconv.Itoa(fs.proc.Pid)+"-"+strconv.Itoa(fs.seq)+"."+name)
		_ = unix.Unlink(paths[i])
		if err := unix.Mkfifo(paths[i], 0o600); err != nil {
			closeAll()
			return nil, fmt.Errorf("mkfifo %s: %w", paths[i], err)
		}
		defer unix.Unlink(paths[i])
		if fs.uid >= 0 || fs.gid >= 0 {
			if err := os.Chown(paths[i], fs.uid, fs.gid); err != nil {
				closeAll()
				return nil, fmt.Errorf("fifo: %w", err)
			}
		}
		fd, err := unix.Open(paths[i], unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("open %s: %w", paths[i], err)
		}
		rfds[i] = fd
	}
	fields := append([]string{"fork", paths[0], paths[1]}, env...)
	for _, f := range fields {
		if strings.ContainsAny(f, "\t\n") {
			closeAll()
			return nil, fmt.Errorf("preload request field %q has a tab or a newline", f)
		}
	}

	rctx, cancel := context.WithTimeout(ctx, preloadReplyTimeout)
	defer cancel()
	b.r.spawnMu.RLock()
	pid, pidfd, err := askFork(rctx, fs, strings.Join(fields, "\t")+"\n")
	if err == nil {
		b.r.track(pid)
	}
	b.r.spawnMu.RUnlock()
	if err != nil {
		closeAll()
		if !errors.As(err, new(*workerError)) {
			fs.failed = true // the pool stops it (startPreloaded)
		}
		return nil, err
	}
	for _, f := range cgroups {
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0); err != nil {
			closeAll()
			_ = killGroup(pid)
			unix.Close(pidfd)
			p := b.r.process(pid)
			_, _ = p.Wait()
			return nil, fmt.Errorf("join control group %s: %w", f, err)
		}
	}
	proc := b.r.process(pid)
	w := &watch{pid: pid, fds: [3]int{rfds[0], rfds[1], pidfd}, owner: c.Owner}
	w.exited = c.exitedFunc(proc)
	if c.Output != nil {
		for i, name := range streamNames {
			w.out[i] = c.Output(pid, name)
		}
	}
	if err := b.p.add(w); err != nil { // the pump was closed
		w.close()
		_ = killGroup(pid)
		_, _ = proc.Wait()
		return nil, fmt.Errorf("watch worker %d: %w", pid, err)
	}
	return proc, nil
}

// workerError is a fork the fork-server refused or failed ("err …"): the
// fork-server itself is fine.
type workerError struct{ msg string }

func (e *workerError) Error() string { return "fork-server: " + e.msg }

// askFork sends one fork request and reads its reply: the new worker's pid,
// and a pidfd of it once it is known to be the master's child. The caller
// holds spawnMu shared.
func askFork(ctx context.Context, fs *forkServer, req string) (pid, pidfd int, err error) {
	if _, err := fs.ctl.Write([]byte(req)); err != nil {
		return 0, -1, fmt.Errorf("fork-server %d: send request: %w", fs.proc.Pid, err)
	}
	line, err := readReply(ctx, fs, nil)
	if err != nil {
		return 0, -1, err
	}
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case "ok":
	case "err":
		return 0, -1, &workerError{rest}
	default:
		return 0, -1, fmt.Errorf("fork-server %d: unexpected reply %q", fs.proc.Pid, line)
	}
	pid, err = strconv.Atoi(rest)
	if err != nil || pid <= 1 {
		return 0, -1, fmt.Errorf("fork-server %d: unexpected reply %q", fs.proc.Pid, line)
	}
	pidfd, err = unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, -1, fmt.Errorf("fork-server %d: worker %d: pidfd_open: %w", fs.proc.Pid, pid, err)
	}
	unix.CloseOnExec(pidfd)
	// Only the master's own child is a worker: the double fork must have
	// made it one (else its exit could not be reaped here).
	if ppid, err := parentPID(pid); err != nil || ppid != os.Getpid() {
		unix.Close(pidfd)
		return 0, -1, fmt.Errorf("fork-server %d: worker %d is not the master's child (parent %d)", fs.proc.Pid, pid, ppid)
	}
	return pid, pidfd, nil
}
