//go:build unix && !linux

package prefork

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

// notifySocket is the master's end of NOTIFY_SOCKET for one daemon on a
// system without SO_PASSCRED (macOS, FreeBSD). Those attach no sender pid
// to a datagram on an unconnected socket (LOCAL_PEERCRED and LOCAL_PEERPID
// are for connected ones), so a datagram here cannot be tied to a worker:
// each is read and dropped as malformed, counted and logged by the pool.
// Daemons of type = notify do not become ready on these systems until the
// pool gives each worker a socket of its own (the socket then names the
// sender); type = simple works.
type notifySocket struct {
	path string
	conn *net.UnixConn
	ino  uint64

	mu     sync.Mutex
	queued []note
	notify chan struct{}
}

var _ noteSource = (*notifySocket)(nil)

// errNoCredentials is why every datagram is dropped here.
var errNoCredentials = fmt.Errorf("%w: no sender credentials on %s", ErrMalformed, runtime.GOOS)

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
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	ns := &notifySocket{path: path, conn: conn, notify: make(chan struct{}, 1)}
	if err := ns.own(uid, gid); err != nil {
		conn.Close()
		return nil, err
	}
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil {
		ns.ino = uint64(st.Ino)
	}
	return ns, nil
}

// own gives the socket file to the workers' user (uid, gid; -1 keeps the
// master's) with mode 0600.
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

// read reads datagrams until the socket is closed, queueing each as a
// note without a sender.
func (s *notifySocket) read(done <-chan struct{}) {
	buf := make([]byte, proto.MaxNotifySize+1)
	for {
		if _, err := s.conn.Read(buf); err != nil {
			select {
			case <-done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		if len(s.queued) < maxQueued {
			s.queued = append(s.queued, note{pid: -1, err: errNoCredentials})
		}
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// maxQueued bounds the notes read and not taken yet.
const maxQueued = 1024

func (s *notifySocket) ready() <-chan struct{} { return s.notify }

func (s *notifySocket) take(bool) []note {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.queued
	s.queued = nil
	return out
}

func (s *notifySocket) close() error {
	err := s.conn.Close()
	var st unix.Stat_t
	if unix.Lstat(s.path, &st) == nil && uint64(st.Ino) == s.ino {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}
