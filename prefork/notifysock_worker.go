//go:build unix

package prefork

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

var _ notifyEndpoints = (*workerSockets)(nil)

// workerSockets are the notify sockets of one daemon on a system that
// attaches no sender pid to a datagram (macOS, FreeBSD: LOCAL_PEERCRED and
// LOCAL_PEERPID are for connected sockets): each worker gets a socket of
// its own, bound at PATH.N before it starts, and the socket names the
// sender. A worker can send only to its own socket (mode 0600, owned by the
// workers' user), so it cannot speak for another — unless they share a
// user, as with one socket on Linux. Datagrams that arrive before the
// worker's pid is known (it sent them at once) wait for it.
type workerSockets struct {
	path string // the daemon's notify path; sockets are path.N

	mu       sync.Mutex // serialises reads of every socket: notes keep each socket's order
	uid, gid int
	next     int
	socks    map[*workerSock]struct{}
	byPID    map[int]*workerSock
	queued   []note
	buf      []byte
	notify   chan struct{}
	closed   bool
}

// workerSock is one worker's socket.
type workerSock struct {
	path    string
	conn    *net.UnixConn
	rc      syscall.RawConn
	ino     uint64
	pid     int    // 0 until the worker has started
	pending []note // read before pid was known
}

// listenWorkerSockets prepares the notify sockets at path.N for workers
// running as uid and gid (-1: the master's). It binds nothing yet.
func listenWorkerSockets(path string, uid, gid int) (*workerSockets, error) {
	// Room for ".NNNNNNN" after the path.
	if len(path)+8 >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("notify socket %s: path longer than %d bytes; choose a shorter run_dir", path, len(unix.RawSockaddrUnix{}.Path)-9)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	return &workerSockets{path: path, uid: uid, gid: gid, socks: map[*workerSock]struct{}{}, byPID: map[int]*workerSock{},
		buf: make([]byte, proto.MaxNotifySize+1), notify: make(chan struct{}, 1)}, nil
}

// endpoint binds the socket of a worker about to start and returns its
// path, and what to call with the worker's pid once it has started (0: it
// did not, and the socket is closed). On an error the path is one nobody
// listens on: the worker's notes are lost, and a type = notify worker is
// not ready in time, as with a full socket.
func (s *workerSockets) endpoint() (string, func(pid int)) {
	s.mu.Lock()
	s.next++
	path := s.path + "." + strconv.Itoa(s.next)
	uid, gid, closed := s.uid, s.gid, s.closed
	s.mu.Unlock()
	if closed {
		return path, func(int) {}
	}
	ws, err := bindWorkerSock(path, uid, gid)
	if err != nil {
		return path, func(int) {}
	}
	s.mu.Lock()
	s.socks[ws] = struct{}{}
	s.mu.Unlock()
	go s.readSock(ws)
	return path, func(pid int) { s.attach(ws, pid) }
}

// bindWorkerSock binds one worker's socket and gives it to its user.
func bindWorkerSock(path string, uid, gid int) (*workerSock, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	rc, err := conn.SyscallConn()
	if err == nil {
		err = ownSocket(path, uid, gid)
	}
	if err != nil {
		conn.Close()
		os.Remove(path)
		return nil, err
	}
	ws := &workerSock{path: path, conn: conn, rc: rc}
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil {
		ws.ino = uint64(st.Ino)
	}
	return ws, nil
}

// ownSocket gives a socket file to uid and gid (-1: the master's), mode 0600.
func ownSocket(path string, uid, gid int) error {
	if uid < 0 {
		uid = os.Geteuid()
	}
	if gid < 0 {
		gid = os.Getegid()
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	return nil
}

// attach ties ws to the worker's pid, handing on what it sent meanwhile.
func (s *workerSockets) attach(ws *workerSock, pid int) {
	if pid <= 0 {
		s.mu.Lock()
		s.forgetLocked(ws)
		s.mu.Unlock()
		ws.shut()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ws.pid = pid
	s.byPID[pid] = ws
	for _, nt := range ws.pending {
		nt.pid = pid
		s.queue(nt)
	}
	ws.pending = nil
}

// readSock reads ws's datagrams until it is closed.
func (s *workerSockets) readSock(ws *workerSock) {
	for {
		var rerr error
		err := ws.rc.Read(func(fd uintptr) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, ok := s.socks[ws]; !ok { // released: its notes no longer count
				rerr = net.ErrClosed
				return true
			}
			var n int
			n, rerr = s.recvLocked(ws, int(fd))
			return n > 0 || rerr != nil
		})
		if err != nil || (rerr != nil && rerr != unix.ENOMEM && rerr != unix.ENOBUFS) {
			return // closed
		}
	}
}

// recvLocked reads ws's datagrams until none is left; s.mu is held. Past
// 4×maxQueued notes not taken (a flood), it drops what it reads: memory
// stays bounded, and the kernel's queue is emptied for the poller to wake
// the reader again.
func (s *workerSockets) recvLocked(ws *workerSock, fd int) (int, error) {
	n := 0
	for {
		dn, _, flags, _, err := unix.Recvmsg(fd, s.buf, nil, unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		nt := note{pid: ws.pid}
		if flags&unix.MSG_TRUNC != 0 || dn > proto.MaxNotifySize {
			nt.err = fmt.Errorf("%w: longer than %d bytes", ErrMalformed, proto.MaxNotifySize)
		} else {
			nt.msg, nt.err = ParseMessage(s.buf[:dn])
		}
		n++
		switch {
		case len(s.queued)+len(ws.pending) >= 4*maxQueued:
		case ws.pid == 0:
			ws.pending = append(ws.pending, nt)
		default:
			s.queue(nt)
		}
	}
}

// queue adds a note for the pool and wakes it; s.mu is held.
func (s *workerSockets) queue(nt note) {
	s.queued = append(s.queued, nt)
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// read is the pool's reader of its one socket; here every worker's socket
// has a reader of its own, started by endpoint.
func (s *workerSockets) read(<-chan struct{}) {}

func (s *workerSockets) ready() <-chan struct{} { return s.notify }

func (s *workerSockets) take(flush bool) []note {
	s.mu.Lock()
	defer s.mu.Unlock()
	if flush {
		for ws := range s.socks {
			_ = ws.rc.Control(func(fd uintptr) { _, _ = s.recvLocked(ws, int(fd)) })
		}
	}
	out := s.queued
	s.queued = nil
	return out
}

// release closes the socket of a worker that was reaped.
func (s *workerSockets) release(pid int) {
	s.mu.Lock()
	ws := s.byPID[pid]
	if ws != nil {
		s.forgetLocked(ws)
	}
	s.mu.Unlock()
	if ws != nil {
		ws.shut()
	}
}

// forgetLocked drops ws from s: its reader reads no more. s.mu is held.
func (s *workerSockets) forgetLocked(ws *workerSock) {
	delete(s.socks, ws)
	if s.byPID[ws.pid] == ws {
		delete(s.byPID, ws.pid)
	}
}

// shut closes ws and removes its file if it is still ours. Not under s.mu:
// closing waits for its reader, which may be waiting for s.mu.
func (ws *workerSock) shut() {
	ws.conn.Close()
	var st unix.Stat_t
	if unix.Lstat(ws.path, &st) == nil && uint64(st.Ino) == ws.ino {
		_ = os.Remove(ws.path)
	}
}

// own gives the sockets, those of workers to come too, to uid and gid.
func (s *workerSockets) own(uid, gid int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uid, s.gid = uid, gid
	for ws := range s.socks {
		if err := ownSocket(ws.path, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func (s *workerSockets) close() error {
	s.mu.Lock()
	s.closed = true
	var all []*workerSock
	for ws := range s.socks {
		s.forgetLocked(ws)
		all = append(all, ws)
	}
	s.mu.Unlock()
	for _, ws := range all {
		ws.shut()
	}
	return nil
}
