package prefork

import (
	"os"
	"strings"
)

// Who a notify datagram from a process that is not a worker counts for
// (notify_access). On Linux the kernel names the sender's pid
// (SO_PASSCRED); a datagram from a worker's own pid counts for it, as
// always. With Config.NotifyAll, one from another process counts for the
// worker whose tree holds it:
//
//   - with control groups, the worker whose group (or a group below it)
//     the sender is in: /proc/PID/cgroup. Nothing a worker starts can leave
//     its group, a double fork included, and no other process can join it.
//   - else (or when no group matches), the worker found up the sender's
//     parent chain: /proc/PID/stat. A process whose parent died was
//     reparented to the master (a child subreaper) and has left every
//     worker's chain: without control groups its messages are ignored, as
//     it cannot be told apart from another daemon's orphan.
//
// Nothing outside the daemon can claim a worker: the sender must be in the
// group or below the worker, both kept by the kernel. (Root may put any pid
// in SCM_CREDENTIALS anyway; systemd-notify as root names its parent.)
//
// The lookup costs a few small reads of /proc, for datagrams from
// processes other than a worker alone, so it is cached per pid, checked
// against the process's start time (one read) so that a pid used again is
// looked up again. The sender must still exist when the pool handles its
// datagram: systemd-notify waits for that (BARRIER=1, see note.barrier);
// a sender that sends and exits at once (systemd-notify --no-block) may be
// gone, and its message is ignored.
//
// With notify_access = main, such a datagram is ignored, and the first one
// from a worker's tree is logged once for that worker with a hint.
//
// Off Linux each worker has a socket of its own and the socket names the
// worker (workerSockets): every process that writes to it speaks for the
// worker, whatever notify_access says.

// procReader is what attribution reads of the process table; tests fake it.
type procReader interface {
	// stat returns pid's parent and its start time (clock ticks since boot).
	stat(pid int) (ppid int, start uint64, err error)
	// cgroup returns pid's group in the cgroup2 hierarchy as
	// /proc/PID/cgroup shows it ("/nsfd/42/web/w1"); "" if none.
	cgroup(pid int) (string, error)
}

// Bounds of the attribution.
const (
	maxSenderCache = 1024 // cached pids per pool; past it the cache starts over
	maxSenderDepth = 64   // parents walked up from a sender
)

// senders attributes notify datagrams to workers for one pool. It is owned
// by the pool's goroutine.
type senders struct {
	proc    procReader
	master  int                    // the walk stops at the master
	groupOf func(w *worker) string // a worker's group as procReader.cgroup shows it; "" if none
	cache   map[int]senderEntry
	hinted  map[int]bool // workers whose ignored tree was logged (notify_access = main)
}

// senderEntry is a cached attribution: the process that had the pid when
// it started at start counts for worker (0: for none).
type senderEntry struct {
	start  uint64
	worker int
}

func newSenders() *senders {
	return &senders{proc: procFS, master: os.Getpid(), groupOf: workerGroupPath,
		cache: map[int]senderEntry{}, hinted: map[int]bool{}}
}

// owner returns the pid of the worker in workers whose tree holds the
// process pid, or 0. With cached it uses and fills the cache.
func (s *senders) owner(pid int, workers map[int]*worker, cached bool) int {
	ppid, start, err := s.proc.stat(pid)
	if err != nil {
		return 0 // gone
	}
	if e, ok := s.cache[pid]; cached && ok && e.start == start && (e.worker == 0 || workers[e.worker] != nil) {
		return e.worker
	}
	w := s.find(pid, ppid, workers)
	// The pid still names the process whose group and parents were read.
	if _, again, err := s.proc.stat(pid); err != nil || again != start {
		return 0
	}
	if cached {
		if len(s.cache) >= maxSenderCache {
			clear(s.cache)
		}
		s.cache[pid] = senderEntry{start: start, worker: w}
	}
	return w
}

// find looks pid (whose parent is ppid) up: its control group, then its
// parent chain.
func (s *senders) find(pid, ppid int, workers map[int]*worker) int {
	grouped := false
	for _, w := range workers {
		if s.groupOf(w) != "" {
			grouped = true
			break
		}
	}
	if grouped {
		if path, err := s.proc.cgroup(pid); err == nil && path != "" {
			for _, w := range workers {
				if g := s.groupOf(w); g != "" && (path == g || strings.HasPrefix(path, g+"/")) {
					return w.pid
				}
			}
		}
	}
	for range maxSenderDepth {
		if workers[ppid] != nil {
			return ppid
		}
		if ppid <= 1 || ppid == s.master {
			return 0 // reparented to the master or init: no worker's any more
		}
		next, _, err := s.proc.stat(ppid)
		if err != nil {
			return 0
		}
		ppid = next
	}
	return 0
}

// forget drops what is known of the worker pid, which was reaped.
func (s *senders) forget(pid int) {
	delete(s.hinted, pid)
	for k, e := range s.cache {
		if e.worker == pid {
			delete(s.cache, k)
		}
	}
}

// unhinted reports whether a worker has not had its hint logged yet.
func (s *senders) unhinted(workers map[int]*worker) bool {
	for pid := range workers {
		if !s.hinted[pid] {
			return true
		}
	}
	return false
}

// noteSender returns the worker a datagram from pid, not a worker itself,
// counts for: with notify_access = all the worker whose tree holds it; with
// main none, and the first such datagram of each worker's tree is logged.
func (p *Pool) noteSender(pid int) *worker {
	if p.senders == nil {
		p.senders = newSenders()
	}
	s := p.senders
	if p.cfg.NotifyAll {
		return p.workers[s.owner(pid, p.workers, true)]
	}
	if !s.unhinted(p.workers) {
		return nil
	}
	if w := s.owner(pid, p.workers, false); w != 0 && !s.hinted[w] {
		s.hinted[w] = true
		p.cfg.Logger.Warn("ignored a notify message from a process the worker started (notify_access = main); notify_access = all would accept it",
			"pid", w, "sender", pid)
	}
	return nil
}
