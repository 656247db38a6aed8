package prefork

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

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
}

// note is one datagram as read, with the sender's pid.
type note struct {
	pid int
	msg Message
	err error // malformed or without credentials
}

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
	ns := &notifySocket{path: path, conn: conn}
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

// maxBatch bounds the datagrams read in one go.
const maxBatch = 128

// read delivers datagrams to out, in batches of what is queued, until the
// socket is closed: under load one wake-up of the reader and of the pool
// serves many status messages.
func (s *notifySocket) read(out chan<- []note, done <-chan struct{}) {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, proto.MaxNotifySize+1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		var batch []note
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for len(batch) < maxBatch {
				n, oobn, flags, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
				if err == unix.EAGAIN || err == unix.EINTR {
					return len(batch) > 0 // nothing queued yet: wait for the socket
				}
				if err != nil {
					rerr = err
					return true
				}
				batch = append(batch, parseDatagram(buf[:n], oob[:oobn], flags))
			}
			return true
		})
		if len(batch) > 0 {
			select {
			case out <- batch:
			case <-done:
				return
			}
		}
		if err != nil || (rerr != nil && rerr != unix.ENOMEM && rerr != unix.ENOBUFS) {
			return // closed
		}
	}
}

// parseDatagram turns one datagram and its control message into a note.
func parseDatagram(b, oob []byte, flags int) note {
	nt := note{pid: -1}
	switch {
	case flags&unix.MSG_TRUNC != 0 || len(b) > proto.MaxNotifySize:
		nt.err = fmt.Errorf("%w: longer than %d bytes", ErrMalformed, proto.MaxNotifySize)
	default:
		nt.pid = credPID(oob)
		if nt.pid <= 0 {
			nt.err = fmt.Errorf("%w: no sender credentials", ErrMalformed)
		} else {
			nt.msg, nt.err = ParseMessage(b)
		}
	}
	return nt
}

func credPID(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	for i := range msgs {
		if c, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			return int(c.Pid)
		}
	}
	return -1
}

func (s *notifySocket) close() error {
	err := s.conn.Close()
	// A pool of the same daemon started since may have bound the path anew.
	var st unix.Stat_t
	if unix.Lstat(s.path, &st) == nil && st.Ino == s.ino {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}
