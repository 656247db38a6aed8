//go:build unix

package prefork

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Portable is the process backend for every unix: macOS and FreeBSD use it
// always, Linux when asked (process_backend = portable). It starts each
// worker with os/exec in a process group of its own, reads its stdout and
// stderr from two goroutines parked on the runtime's poller (kqueue or
// epoll, no thread each), and learns of its exit from an exitWatcher:
// kqueue's EVFILT_PROC on macOS and FreeBSD, SIGCHLD and waitid(WNOWAIT) on
// Linux. None of these reaps the worker: the pool does.
//
// What PDEATHSIG gives Pump on Linux — workers die with the master — a
// keeper process gives it here (see keeper): it holds the read end of a
// pipe only the master writes to, learns from it the process group of each
// worker, and kills them all when the pipe ends, which the kernel sees to
// however the master died.
type Portable struct {
	exits  exitWatcher
	keeper *keeper

	mu     sync.Mutex
	procs  map[*portableProc]struct{}
	closed bool

	// started, if set, is called with each process Start started, before
	// the keeper is told of it (a test stands in a master dying there).
	started func(pid int)
}

var _ Procs = (*Portable)(nil)

// OpenPortable starts the backend's exit watcher and its keeper. The keeper
// is this program run again with a variable in its environment: a program
// that opens a Portable backend must call RunKeeperIfAsked first thing in
// main (or in an init func), as it calls RunShim. Close the backend once
// every pool using it has stopped.
func OpenPortable() (*Portable, error) {
	exits, err := newExitWatcher()
	if err != nil {
		return nil, fmt.Errorf("start worker exit watcher: %w", err)
	}
	k, err := startKeeper()
	if err != nil {
		exits.close()
		return nil, fmt.Errorf("start worker keeper: %w", err)
	}
	return &Portable{exits: exits, keeper: k, procs: map[*portableProc]struct{}{}}, nil
}

// portableProc is one worker as the portable backend sees it.
type portableProc struct {
	b      *Portable
	owner  any
	pid    int
	exited func()

	mu       sync.Mutex
	streams  [2]*portableStream
	reported bool // exited was called, or the process was dropped: nothing more is reported
	stop     chan struct{}
	stopOnce sync.Once
}

// portableStream is one of a worker's output pipes.
type portableStream struct {
	f      *os.File
	rc     syscall.RawConn
	out    io.WriteCloser                      // nil discards
	paced  interface{ Hold() <-chan struct{} } // out if it asks for pauses, as the pump's pacedWriter
	closed bool                                // out is closed; the reader closes f and ends
	done   chan struct{}                       // closed once the reader has closed f
}

// portableStreams are the names of a process's two streams, for
// Command.Output.
var portableStreams = [2]string{"stdout", "stderr"}

// portableBufSize is the most one read takes: a full pipe, as the pump.
const portableBufSize = 64 << 10

// portableBuf holds the buffers the readers read into: one per read in
// progress, not one per stream.
var portableBuf = sync.Pool{New: func() any { b := make([]byte, portableBufSize); return &b }}

// Start starts c's process, its two readers and the watch of its exit, and
// tells the keeper of its process group.
func (b *Portable) Start(ctx context.Context, c Command) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rs, ws [2]*os.File
	for i := range rs {
		var err error
		if rs[i], ws[i], err = os.Pipe(); err != nil {
			for j := range i {
				rs[j].Close()
				ws[j].Close()
			}
			return nil, fmt.Errorf("%s pipe: %w", portableStreams[i], err)
		}
	}
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env = c.Env
	cmd.ExtraFiles = c.Files
	// The shim tells the keeper of itself before it runs anything (see
	// announceToKeeper): no worker escapes a master that dies as it forks.
	if l := b.lifeline(c); l != nil {
		defer l.Close()
		cmd.ExtraFiles = append(c.Files[:len(c.Files):len(c.Files)], l)
		cmd.Env = append(c.Env[:len(c.Env):len(c.Env)], keeperFDEnv+"="+strconv.Itoa(3+len(c.Files)))
	}
	cmd.Stdin = workerStdin()
	cmd.Stdout, cmd.Stderr = ws[0], ws[1]
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	forget, err := startTracked(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	ws[0].Close() // the process holds the write ends now
	ws[1].Close()
	if err != nil {
		rs[0].Close()
		rs[1].Close()
		return nil, err
	}
	proc := fromOS(cmd.Process)
	proc.forget = forget
	p := &portableProc{b: b, owner: c.Owner, pid: proc.Pid, exited: c.exitedFunc(proc), stop: make(chan struct{})}
	for i := range rs {
		s := &portableStream{f: rs[i], done: make(chan struct{})}
		s.rc, err = rs[i].SyscallConn()
		if err != nil { // cannot happen for a pipe
			return nil, b.abort(proc, rs, fmt.Errorf("%s pipe: %w", portableStreams[i], err))
		}
		p.streams[i] = s
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, b.abort(proc, rs, errors.New("worker backend closed"))
	}
	b.procs[p] = struct{}{}
	b.mu.Unlock()
	if b.started != nil {
		b.started(proc.Pid)
	}
	b.keeper.add(proc.Pid)
	if c.Output != nil {
		for i, name := range portableStreams {
			p.streams[i].out = c.Output(proc.Pid, name)
			p.streams[i].paced, _ = p.streams[i].out.(interface{ Hold() <-chan struct{} })
		}
	}
	for i := range p.streams {
		go p.read(p.streams[i])
	}
	if err := b.exits.watch(proc.Pid, p.onExit); err != nil {
		// The watcher is closed: the backend is closing. Nothing was reported.
		b.drop(p)
		_ = killGroup(proc.Pid)
		_, _ = proc.Wait()
		return nil, fmt.Errorf("watch worker %d: %w", proc.Pid, err)
	}
	return proc, nil
}

// lifeline is a copy of the keeper's lifeline for c's shim, or nil when c
// runs no shim: any other program would keep the lifeline open for life.
func (b *Portable) lifeline(c Command) *os.File {
	if !c.Shim {
		return nil
	}
	return b.keeper.lifeline()
}

// abort ends a process Start could not watch, and closes its pipes.
func (b *Portable) abort(proc *Process, rs [2]*os.File, err error) error {
	rs[0].Close()
	rs[1].Close()
	_ = killGroup(proc.Pid)
	_, _ = proc.Wait()
	return err
}

// read reads the stream until its end, or until the process is dropped,
// handing what it reads to the stream's writer.
func (p *portableProc) read(s *portableStream) {
	defer close(s.done)
	defer s.f.Close()
	for {
		if s.paced != nil {
			if c := s.paced.Hold(); c != nil {
				select {
				case <-c:
				case <-p.stop:
				}
			}
		}
		end := false
		err := s.rc.Read(func(fd uintptr) bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			if s.closed {
				end = true
				return true
			}
			bp := portableBuf.Get().(*[]byte)
			defer portableBuf.Put(bp)
			n, err := unix.Read(int(fd), *bp)
			switch {
			case n > 0:
				s.write((*bp)[:n])
			case errors.Is(err, unix.EAGAIN):
				return false // wait on the poller
			case errors.Is(err, unix.EINTR):
			default: // EOF, or an error no later read will fix
				s.closeOut()
				end = true
			}
			return true
		})
		if err != nil || end {
			p.mu.Lock()
			s.closeOut()
			p.mu.Unlock()
			p.b.forgetIfDone(p)
			return
		}
	}
}

// write hands output to the stream's writer; p.mu is held.
func (s *portableStream) write(b []byte) {
	if s.out != nil {
		_, _ = s.out.Write(b)
	}
}

// closeOut closes the stream's writer, once; p.mu is held.
func (s *portableStream) closeOut() {
	if s.closed {
		return
	}
	s.closed = true
	if s.out != nil {
		_ = s.out.Close()
		s.out = nil
	}
}

// drainLocked reads what is in the stream now, and then once more, as the
// pump's drain does; p.mu is held, so no reader writes meanwhile.
func (s *portableStream) drainLocked() {
	if s.closed {
		return
	}
	_ = s.rc.Control(func(fd uintptr) {
		avail, err := unix.IoctlGetInt(int(fd), fionread)
		if err != nil {
			avail = 0
		}
		bp := portableBuf.Get().(*[]byte)
		defer portableBuf.Put(bp)
		buf := *bp
		for last := false; !last; {
			size := avail
			if size <= 0 {
				size, last = len(buf), true
			}
			n, err := unix.Read(int(fd), buf[:min(size, len(buf))])
			switch {
			case n > 0:
				s.write(buf[:n])
				avail -= n
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
				return
			default:
				s.closeOut()
				return
			}
		}
	})
	if s.closed {
		s.kick()
	}
}

// kick wakes the stream's reader if it waits on the poller, so that it
// sees the stream closed and ends.
func (s *portableStream) kick() { _ = s.f.SetReadDeadline(time.Unix(1, 0)) }

// onExit is called by the exit watcher once the process has exited: it
// reads what the process left in its pipes and reports the exit.
func (p *portableProc) onExit() {
	p.mu.Lock()
	if p.reported {
		p.mu.Unlock()
		return
	}
	p.reported = true
	for _, s := range p.streams {
		s.drainLocked()
	}
	p.mu.Unlock()
	p.b.keeper.remove(p.pid)
	p.exited()
	p.b.forgetIfDone(p)
}

// forgetIfDone drops p from the backend once its exit is reported and its
// readers are done.
func (b *Portable) forgetIfDone(p *portableProc) {
	p.mu.Lock()
	done := p.reported && p.streams[0].closed && p.streams[1].closed
	p.mu.Unlock()
	if done {
		b.mu.Lock()
		delete(b.procs, p)
		b.mu.Unlock()
	}
}

// Drop closes what is left of owner's processes: it reads what is in their
// pipes now, closes them and their writers, and reports no exit of theirs.
func (b *Portable) Drop(owner any) {
	b.mu.Lock()
	var ps []*portableProc
	for p := range b.procs {
		if p.owner == owner {
			ps = append(ps, p)
		}
	}
	b.mu.Unlock()
	for _, p := range ps {
		b.drop(p)
	}
}

// drop closes what is left of p and waits for its readers to end.
func (b *Portable) drop(p *portableProc) {
	b.exits.forget(p.pid)
	p.mu.Lock()
	wasReported := p.reported
	p.reported = true
	for _, s := range p.streams {
		s.drainLocked()
		s.closeOut()
		s.kick()
	}
	p.mu.Unlock()
	p.stopOnce.Do(func() { close(p.stop) })
	for _, s := range p.streams {
		<-s.done
	}
	if !wasReported {
		b.keeper.remove(p.pid)
	}
	b.mu.Lock()
	delete(b.procs, p)
	b.mu.Unlock()
}

// Close drops every process left, stops the exit watcher and lets the
// keeper go: it kills the process groups of workers still running, as at
// the master's death. It is idempotent.
func (b *Portable) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	var ps []*portableProc
	for p := range b.procs {
		ps = append(ps, p)
	}
	b.mu.Unlock()
	for _, p := range ps {
		b.drop(p)
	}
	b.exits.close()
	b.keeper.close()
}

// exitWatcher tells of the exit of processes, without reaping them.
type exitWatcher interface {
	// watch calls exited once pid has exited, from the watcher's goroutine
	// (or at once if it has exited already). It fails once closed.
	watch(pid int, exited func()) error
	// forget stops watching pid: its exit is not reported.
	forget(pid int)
	// close stops the watcher; watches left are not reported.
	close()
}
