package prefork

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

// notifySocket is the master's end of NOTIFY_SOCKET for one daemon: a bound
// unixgram socket with SO_PASSCRED, so every datagram arrives with the
// sender's pid as the kernel saw it. A worker cannot speak for another.
type notifySocket struct {
	path string
	conn *net.UnixConn
	ino  uint64 // of the socket file: close removes the path only if it is still ours

	rc     syscall.RawConn
	mu     sync.Mutex    // serialises reads of the socket: notes keep the kernel's order
	queued []note        // read, not taken yet
	batch  *mmsgBatch    // recvmmsg(2) buffers, under mu
	notify chan struct{} // a token once queued is not empty
	space  chan struct{} // a token once the pool took what was queued
}

var _ noteSource = (*notifySocket)(nil)

// listenNotify binds the notify socket at path for workers running as uid
// and gid (-1: the master's).
func listenNotify(path string, uid, gid int) (*notifySocket, error) {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("notify socket %s: path longer than %d bytes; choose a shorter run_dir", path, len(unix.RawSockaddrUnix{}.Path)-1)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	// Born owner-only (bindUnix), until own gives it to the workers' user.
	f, _, err := bindUnix("unixgram", path)
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	conn := pc.(*net.UnixConn)
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		if serr == nil {
			// Room for bursts of BUSY/IDLE from many workers.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket: SO_PASSCRED: %w", err)
	}
	ns := &notifySocket{path: path, conn: conn, rc: raw,
		batch:  newMmsgBatch(mmsgBatchSize),
		notify: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	if err := ns.own(uid, gid); err != nil {
		conn.Close()
		return nil, err
	}
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil {
		ns.ino = st.Ino
	}
	return ns, nil
}

// own gives the socket file to the workers' user (uid, gid; -1 keeps the
// master's) with mode 0600: only they and root may send to it, and the
// peer credentials say which process did.
func (s *notifySocket) own(uid, gid int) error {
	if uid < 0 {
		uid = os.Geteuid()
	}
	if gid < 0 {
		gid = os.Getegid()
	}
	if err := os.Lchown(s.path, uid, gid); err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	if err := os.Chmod(s.path, 0o600); err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	return nil
}

// maxQueued bounds the notes read and not taken yet: past it the reader
// waits for the pool, and the kernel's queue holds the rest (and, full,
// makes senders wait), so a flood costs bounded memory.
const maxQueued = 1024

// read reads datagrams as they arrive and queues them for the pool until
// the socket is closed or done is closed: under load one wake-up of the
// reader and of the pool serves many status messages.
func (s *notifySocket) read(done <-chan struct{}) {
	for {
		var n int
		var rerr error
		err := s.rc.Read(func(fd uintptr) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			n, rerr = s.recvLocked(int(fd), maxQueued)
			// Nothing queued in the kernel and room here: wait for the socket.
			return n > 0 || rerr != nil || len(s.queued) >= maxQueued
		})
		if n > 0 {
			select {
			case s.notify <- struct{}{}:
			default: // a token is there already
			}
		}
		if err != nil || (rerr != nil && rerr != unix.ENOMEM && rerr != unix.ENOBUFS) {
			return // closed
		}
		s.mu.Lock()
		full := len(s.queued) >= maxQueued
		s.mu.Unlock()
		if full {
			select {
			case <-s.space:
			case <-done:
				return
			}
		}
	}
}

// recvLocked reads datagrams from fd into s.queued, a batch per
// recvmmsg(2) call, until the kernel has none left or s.queued holds
// limit; it returns how many it read, and the error that stopped it if not
// "none left". A batch that comes back short means the kernel's queue was
// empty: no further call to be told EAGAIN. Each datagram keeps its own
// SCM_CREDENTIALS. s.mu is held.
func (s *notifySocket) recvLocked(fd, limit int) (int, error) {
	n := 0
	for len(s.queued) < limit {
		want := min(limit-len(s.queued), mmsgBatchSize)
		k, err := s.batch.recv(fd, want)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		for i := range k {
			s.queued = append(s.queued, s.batch.note(i))
		}
		n += k
		if k < want {
			return n, nil
		}
	}
	return n, nil
}

func (s *notifySocket) ready() <-chan struct{} { return s.notify }

func (s *notifySocket) take(flush bool) []note {
	s.mu.Lock()
	defer s.mu.Unlock()
	if flush {
		// What the kernel holds was sent before now: read it too, in order
		// after what the reader queued. Past 2×maxQueued the sender is
		// flooding; the rest waits for the next read.
		_ = s.rc.Control(func(fd uintptr) { _, _ = s.recvLocked(int(fd), 2*maxQueued) })
	}
	out := s.queued
	s.queued = nil
	select {
	case s.space <- struct{}{}:
	default:
	}
	return out
}

// parseDatagram turns one datagram and its control message into a note,
// and returns the descriptors the control message holds, for adoptFDs.
func parseDatagram(b, oob []byte, flags int) (note, []int) {
	pid, fds := parseControl(oob)
	nt := note{pid: -1}
	switch {
	case flags&unix.MSG_TRUNC != 0 || len(b) > proto.MaxNotifySize:
		nt.err = fmt.Errorf("%w: longer than %d bytes", ErrMalformed, proto.MaxNotifySize)
	default:
		nt.pid = pid
		if nt.pid <= 0 {
			nt.err = fmt.Errorf("%w: no sender credentials", ErrMalformed)
		} else {
			nt.msg, nt.err = ParseMessage(b)
		}
	}
	return nt, fds
}

// adoptFDs takes the descriptors the kernel passed with nt: one passed with
// BARRIER=1 is kept in the note, to be closed once it is handled; any other
// is closed at once.
func adoptFDs(nt *note, fds []int) {
	if nt.err == nil && nt.msg.Barrier && len(fds) > 0 {
		nt.barrier = os.NewFile(uintptr(fds[0]), "notify barrier")
		fds = fds[1:]
	}
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// parseControl returns the sender's pid from SCM_CREDENTIALS (-1: none)
// and the descriptors SCM_RIGHTS passed.
func parseControl(oob []byte) (int, []int) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, nil
	}
	pid := -1
	var fds []int
	for i := range msgs {
		if c, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			pid = int(c.Pid)
		} else if r, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, r...)
		}
	}
	return pid, fds
}

func (s *notifySocket) close() error {
	err := s.conn.Close()
	s.mu.Lock()
	for _, nt := range s.queued { // not to be handled: let their senders go
		nt.release()
	}
	s.queued = nil
	s.mu.Unlock()
	// A pool of the same daemon started since may have bound the path anew.
	var st unix.Stat_t
	if unix.Lstat(s.path, &st) == nil && st.Ino == s.ino {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}
