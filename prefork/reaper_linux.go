package prefork

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaper makes the master a child subreaper and reaps the orphans that
// become its children: what a worker forked and left behind when it (or the
// helper in between, after setsid and a double fork) exited. It never reaps
// a worker: a pool does, with (*Process).Wait, and must see the worker's
// exit status.
//
// Which of the master's children are workers: every worker is forked by the
// pump, which holds spawnMu shared from the fork until the worker is in
// known, and leaves known when its pool reaps it (the Process's forget).
// A pass that reaps holds spawnMu exclusively, so then known is exact, and
// a child that is not in it is an orphan — unless it is in the master's own
// process group: workers lead groups of their own and what they fork is in
// theirs or another, while what the master's process forks outside the
// pump (nsfd forks nothing else; a test binary does) stays in its group and
// is left to whoever forked it.
//
// A pass runs shortly after every SIGCHLD, so after every worker's exit:
// it reads each thread's children file, looks each child up in known, and
// reads /proc only for the few that are not workers (with a stat read a
// child and spawnMu held, a pass took tens of milliseconds at 1000 workers
// and the replacement waited as long). One gap is left: between a pool's
// wait4 and its forget, the pid is free and known still names it; an
// orphan that got that very pid in that window and exits is reaped after
// the next SIGCHLD, or when the master stops.
type reaper struct {
	pgid    int // the master's process group
	spawnMu sync.RWMutex

	mu    sync.Mutex
	known map[int]bool // workers the pools have not reaped yet

	// pass is held through each pass over /proc (tryReap, killLeftovers):
	// a test holds it to count the process's descriptors without a pass's.
	pass  sync.Mutex
	tries atomic.Int64 // passes tried, for the tests

	sigs chan os.Signal
	stop chan struct{}
	done chan struct{}
}

// shared is the process's one reaper: a second one would take the
// workers of the first's pumps for orphans. Pumps share it, counted.
var shared struct {
	mu   sync.Mutex
	r    *reaper
	refs int
}

// newReaper makes the process a child subreaper and starts the goroutine
// that reaps orphans on SIGCHLD, or returns the one already running; each
// call needs its release.
func newReaper() (*reaper, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.r != nil {
		shared.refs++
		return shared.r, nil
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, &os.SyscallError{Syscall: "prctl(PR_SET_CHILD_SUBREAPER)", Err: err}
	}
	r := &reaper{
		pgid:  unix.Getpgrp(),
		known: make(map[int]bool),
		sigs:  make(chan os.Signal, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.run()
	shared.r, shared.refs = r, 1
	return r, nil
}

// run reaps reapDelay after a SIGCHLD, once for every SIGCHLD that came
// meanwhile: most are a worker's, whose replacement the pool is spawning
// then, and a pass (it reads every thread's children file, thousands of
// pids at 1000 workers) on the same CPUs made it wait. A pass that must
// reap and finds a spawn under way (a preloaded worker's fork waits for
// its fork-server's reply, up to preloadReplyTimeout) does not queue for
// spawnMu at once: a waiting writer would stop every other spawn of every
// daemon behind it. It tries again every reapRetry, and queues after
// reapPatience.
func (r *reaper) run() {
	defer close(r.done)
	var (
		pass  <-chan time.Time // a pass is due
		retry <-chan time.Time
		since time.Time // the first pass that could not reap
	)
	for {
		select {
		case <-r.sigs:
			if pass == nil {
				pass = time.After(reapDelay)
			}
			continue
		case <-pass:
			pass = nil
		case <-retry:
		case <-r.stop:
			signal.Stop(r.sigs)
			return
		}
		retry = nil
		if since.IsZero() {
			since = time.Now()
		}
		if r.tryReap(time.Since(since) < reapPatience) {
			since = time.Time{}
		} else {
			retry = time.After(reapRetry)
		}
	}
}

// reapDelay is how long after a SIGCHLD a pass runs; reapRetry, how soon
// a pass that found a spawn under way tries again; reapPatience, how long
// before it queues for its turn.
const (
	reapDelay    = 10 * time.Millisecond
	reapRetry    = 20 * time.Millisecond
	reapPatience = 2 * time.Second
)

// startTracked runs start, a fork that returns the child's pid, so that
// the process's orphan reaper, if a pump runs one, never takes the child
// for an orphan: the portable backend forks its workers with it, in a
// process where a pump also runs (the tests; a master uses one backend).
// It returns the forget to set on the child's Process (nil without a
// reaper).
func startTracked(start func() (int, error)) (forget func(pid int), err error) {
	shared.mu.Lock()
	r := shared.r
	shared.mu.Unlock()
	if r == nil {
		_, err := start()
		return nil, err
	}
	r.spawnMu.RLock()
	defer r.spawnMu.RUnlock()
	pid, err := start()
	if err != nil {
		return nil, err
	}
	r.track(pid)
	return r.forget, nil
}

// track records pid as a worker; the caller holds spawnMu shared.
func (r *reaper) track(pid int) {
	r.mu.Lock()
	r.known[pid] = true
	r.mu.Unlock()
}

// forget drops pid, a worker its pool has just reaped.
func (r *reaper) forget(pid int) {
	r.mu.Lock()
	delete(r.known, pid)
	r.mu.Unlock()
}

// process is the handle of worker pid, tracked: it leaves known when reaped.
func (r *reaper) process(pid int) *Process {
	return &Process{Pid: pid, forget: r.forget}
}

// orphans returns the master's children that are not workers. Without
// spawnMu it may also return a worker forked but not yet tracked: a caller
// that reaps holds spawnMu exclusively.
func (r *reaper) orphans() []int {
	kids := children()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, pid := range kids {
		if r.known[pid] {
			continue
		}
		if pg, err := unix.Getpgid(pid); err == nil && pg == r.pgid {
			continue // the master's own
		}
		out = append(out, pid)
	}
	return out
}

// tryReap reaps every orphan that has exited. Most passes find none (a
// SIGCHLD is mostly a worker's, which its pool reaps) and need no lock;
// one that finds a zombie reaps under spawnMu, unless a spawn is under way
// and patient is set: then it returns false and does nothing.
func (r *reaper) tryReap(patient bool) bool {
	r.pass.Lock()
	defer r.pass.Unlock()
	r.tries.Add(1)
	zombie := false
	for _, pid := range r.orphans() {
		if st, err := statFields(pid); err == nil && string(st[0]) == "Z" {
			zombie = true
			break
		}
	}
	if !zombie {
		return true
	}
	if patient {
		if !r.spawnMu.TryLock() {
			return false
		}
	} else {
		r.spawnMu.Lock()
	}
	defer r.spawnMu.Unlock()
	for _, pid := range r.orphans() {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
	return true
}

// killLeftovers sends SIGKILL to what worker pid left behind outside its
// process group: the orphans (and their descendants) that carry its
// LISTEN_PID in their environment, which every process the worker started
// inherits unless it cleared its environment.
// It needs no lock: a worker forked meanwhile, not yet tracked, carries
// its own pid, which cannot be the unreaped worker pid's.
func (r *reaper) killLeftovers(pid int) {
	r.pass.Lock()
	defer r.pass.Unlock()
	mark := []byte("LISTEN_PID=" + strconv.Itoa(pid) + "\x00")
	var roots []int
	for _, o := range r.orphans() {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(o) + "/environ")
		if err == nil && bytes.Contains(append([]byte{0}, env...), append([]byte{0}, mark...)) {
			roots = append(roots, o)
		}
	}
	killTrees(roots)
}

// killAll sends SIGKILL to every orphan and its descendants, and reaps them,
// waiting at most until deadline. The master calls it as it exits.
func (r *reaper) killAll(deadline time.Time) {
	for time.Now().Before(deadline) {
		r.spawnMu.Lock()
		roots := r.orphans()
		killTrees(roots)
		r.spawnMu.Unlock()
		if len(roots) == 0 {
			return
		}
		for _, pid := range roots {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil) // SIGKILLed: it dies now
		}
	}
}

// release drops a pump's hold of the reaper, and stops its goroutine after
// the last.
func (r *reaper) release() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.refs--; shared.refs > 0 {
		return
	}
	shared.r = nil
	close(r.stop)
	<-r.done
}

// killTrees sends SIGKILL to each of roots and every descendant of it.
func killTrees(roots []int) {
	if len(roots) == 0 {
		return
	}
	kids := make(map[int][]int)
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if ppid, err := parentPID(pid); err == nil {
			kids[ppid] = append(kids[ppid], pid)
		}
	}
	seen := make(map[int]bool)
	for todo := roots; len(todo) > 0; {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		_ = unix.Kill(pid, unix.SIGKILL)
		todo = append(todo, kids[pid]...)
	}
}

// children returns the pids of the process's children, from the children
// files of all its threads (an orphan is handed to one of the threads). A
// reaper pass runs it at every worker's exit: it reads the thread list
// once and each file with plain system calls (filepath.Glob read every
// thread's directory too, and os.File tries each /proc file on the poller:
// a fifth of the master's CPU in a kill-and-replace loop).
func children() []int {
	tids, err := dirNames("/proc/self/task")
	if err != nil {
		return nil
	}
	var out []int
	buf := make([]byte, 4096)
	for _, tid := range tids {
		b, err := readProc("/proc/self/task/"+tid+"/children", buf)
		if err != nil {
			continue
		}
		buf = b[:cap(b)]
		for _, s := range bytes.Fields(b) {
			if pid, err := strconv.Atoi(string(s)); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// dirNames returns the names in the directory dir.
func dirNames(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// readProc reads the whole of the /proc file path into buf, grown as
// needed, and returns what it read.
func readProc(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// statFields returns the fields of /proc/PID/stat after the command name:
// [0] is the state, [1] the parent pid, [19] the start time.
func statFields(pid int) ([][]byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return nil, errors.New("malformed /proc stat")
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 20 {
		return nil, errors.New("malformed /proc stat")
	}
	return f, nil
}

// parentPID returns pid's parent.
func parentPID(pid int) (int, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(f[1]))
}
