//go:build unix

package prefork

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The keeper keeps the promise that a killed master leaves no worker where
// there is no parent-death signal (macOS, FreeBSD; Linux with the portable
// backend). It is the master's own program run again, in a process group
// of its own, with the read end of a pipe (the lifeline) as its stdin; only
// the master holds the write end. The master writes "+pid" when it has
// started a worker and "-pid" once the worker is gone; the keeper keeps the
// set. When the lifeline ends — the master closed the backend, or died,
// SIGKILL included: the kernel closes the pipe of a dead process — the
// keeper kills the process group of every worker left, and exits.
//
// A pipe's end is what every unix reports for every death, with no polling
// and no pid to be reused; kqueue's NOTE_EXIT on the master's pid or
// FreeBSD's procctl(PROC_PDEATHSIG_CTL) would tell no more.
//
// A worker forked in the instant before the master's death is not lost
// either: the shim gets a copy of the lifeline's write end (its number in
// keeperFDEnv) and writes its own "+pid" before it execs the program. Until
// then its copy keeps the lifeline open, so the keeper cannot miss it; the
// copy is closed at the exec, so the worker's program never holds it.

// keeperEnv in its environment turns a program into the keeper: see
// RunKeeperIfAsked.
const keeperEnv = "NSFD_PREFORK_KEEPER"

// keeperFDEnv in a shim's environment names the descriptor of its copy of
// the lifeline's write end (see announceToKeeper).
const keeperFDEnv = "NSFD_KEEPER_FD"

// KeeperArg is the keeper's first argument: it does nothing (the
// environment makes the keeper) but name the process in ps(1).
const KeeperArg = "__nsfd_keeper"

// keeperHello is what the keeper writes to its stdout once it is ready, so
// the master knows its program called RunKeeperIfAsked.
const keeperHello = "nsfd keeper\n"

// RunKeeperIfAsked runs the keeper and exits if this process was started as
// one by OpenPortable; otherwise it returns at once. A program that opens a
// Portable backend calls it before anything else.
func RunKeeperIfAsked() {
	if os.Getenv(keeperEnv) != "1" {
		return
	}
	// Only the lifeline's end stops the keeper: not a ^C or a hang-up of
	// the master's terminal.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGTSTP)
	_, _ = io.WriteString(os.Stdout, keeperHello)
	os.Stdout.Close()
	runKeeper(os.Stdin, killGroupOnly)
	os.Exit(0)
}

// runKeeper reads the lifeline until it ends, then kills what is left.
func runKeeper(r io.Reader, kill func(pid int)) {
	groups := map[int]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 {
			continue
		}
		pid, err := strconv.Atoi(line[1:])
		if err != nil || pid <= 1 {
			continue
		}
		switch line[0] {
		case '+':
			groups[pid] = true
		case '-':
			delete(groups, pid)
		}
	}
	for pid := range groups {
		kill(pid)
	}
}

// killGroupOnly sends SIGKILL to the process group pid leads; never to a
// single pid, which may be anybody's by now.
func killGroupOnly(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

// keeper is the master's side of the keeper: the lifeline's write end.
type keeper struct {
	mu   sync.Mutex
	w    *os.File // nil once closed
	proc *os.Process
	done chan struct{} // closed once the keeper is reaped
}

// startKeeper starts the keeper and waits for its hello.
func startKeeper() (*keeper, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	lr, lw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// The lifeline's write end is in blocking mode (which Fd sets): it is
	// copied to shims, as os/exec passes a file, and a line is one short
	// write the keeper reads at once.
	lw.Fd()
	hr, hw, err := os.Pipe()
	if err != nil {
		lr.Close()
		lw.Close()
		return nil, err
	}
	cmd := exec.Command(exe, KeeperArg)
	cmd.Env = append(os.Environ(), keeperEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = lr, hw, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	lr.Close()
	hw.Close()
	if err != nil {
		lw.Close()
		hr.Close()
		return nil, err
	}
	k := &keeper{w: lw, proc: cmd.Process, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(k.done) }()
	_ = hr.SetReadDeadline(time.Now().Add(15 * time.Second))
	hello := make([]byte, len(keeperHello))
	_, err = io.ReadFull(hr, hello)
	hr.Close()
	if err != nil || string(hello) != keeperHello {
		_ = k.proc.Kill()
		k.close()
		if err == nil {
			err = errors.New("unexpected hello")
		}
		return nil, fmt.Errorf("%s did not start as the keeper (does it call prefork.RunKeeperIfAsked first?): %w", exe, err)
	}
	return k, nil
}

// lifeline returns a copy of the lifeline's write end for a worker's shim
// (see announceToKeeper), or nil once the lifeline is closed. The caller
// closes it once the process has started.
func (k *keeper) lifeline() *os.File {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.w == nil {
		return nil
	}
	fd, err := unix.FcntlInt(k.w.Fd(), unix.F_DUPFD_CLOEXEC, 3) // blocking: Fd changes nothing
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), "lifeline")
}

// announceToKeeper is the shim's part of the keeper's promise: if the
// backend gave it the lifeline (keeperFDEnv), it writes its own "+pid" there
// and marks the descriptor close-on-exec, before anything else it does, and
// drops the variable from the environment the program gets. The master
// writes the same line once the shim has started; the keeper keeps a set.
func announceToKeeper() {
	v, ok := os.LookupEnv(keeperFDEnv)
	if !ok {
		return
	}
	os.Unsetenv(keeperFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return
	}
	_, _ = unix.Write(fd, []byte("+"+strconv.Itoa(os.Getpid())+"\n"))
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
}

// add tells the keeper of a worker's process group.
func (k *keeper) add(pid int) { k.send("+" + strconv.Itoa(pid) + "\n") }

// remove tells the keeper that a worker is gone.
func (k *keeper) remove(pid int) { k.send("-" + strconv.Itoa(pid) + "\n") }

// send writes one line to the lifeline. A keeper that died takes nothing
// more: the workers then live on without it (the master, alive, still
// stops them).
func (k *keeper) send(line string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.w == nil {
		return
	}
	if _, err := k.w.WriteString(line); err != nil {
		k.w.Close()
		k.w = nil
	}
}

// close ends the lifeline and waits for the keeper to exit, after it has
// killed what it still knew of.
func (k *keeper) close() {
	k.mu.Lock()
	if k.w != nil {
		k.w.Close()
		k.w = nil
	}
	k.mu.Unlock()
	<-k.done
}
