package prefork

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotifyTooLarge is returned by Notify for a message longer than
// MaxNotifySize, which the master would drop.
var ErrNotifyTooLarge = errors.New("notify message too large")

// notifySendTimeout bounds how long Notify waits for room in the master's
// socket queue before it gives up.
var notifySendTimeout = 500 * time.Millisecond

// Notify sends the states, joined by newlines, as one datagram to
// $NOTIFY_SOCKET: a socket path, or an abstract socket name starting with
// "@". It does nothing and returns nil when NOTIFY_SOCKET is unset or no
// state is given. The words are those of the worker contract:
//
//	prefork.Notify(prefork.NotifyReady, prefork.NotifyStatus+"warm")
//
// The master knows the sender by the pid the kernel attaches to the
// datagram, so only the worker process itself can report for itself.
//
// Notify is safe for concurrent use and cheap: the socket is opened on first
// use and kept. It never blocks for long: when the master's queue is full it
// waits at most half a second for room, then returns an error.
func Notify(state ...string) error {
	addr := os.Getenv(EnvNotifySocket)
	if addr == "" || len(state) == 0 {
		return nil
	}
	msg := strings.Join(state, "\n")
	if len(msg) > MaxNotifySize {
		return fmt.Errorf("notify: %d bytes, limit %d: %w", len(msg), MaxNotifySize, ErrNotifyTooLarge)
	}
	if err := defaultNotifyClient.send(addr, []byte(msg)); err != nil {
		return fmt.Errorf("notify %s: %w", addr, err)
	}
	return nil
}

// Busy sends BUSY=1: the worker is handling a request. The master counts
// each BUSY=1 as one request towards max_requests. Serve reports busy and
// idle on its own; Busy and Idle are for workers that accept by themselves.
func Busy() error { return Notify(NotifyBusy) }

// Idle sends BUSY=0: the worker waits for a request again.
func Idle() error { return Notify(NotifyIdle) }

// notifyClient is the worker's end of NOTIFY_SOCKET: one datagram socket
// connected to the master's, redialled when the address changes or the
// master's socket went away.
type notifyClient struct {
	mu   sync.Mutex
	addr string
	conn *net.UnixConn
}

var defaultNotifyClient notifyClient

func (n *notifyClient) send(addr string, msg []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn != nil && n.addr != addr {
		n.conn.Close()
		n.conn = nil
	}
	for attempt := 0; ; attempt++ {
		if n.conn == nil {
			c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
			if err != nil {
				return err
			}
			n.conn, n.addr = c, addr
		}
		err := n.write(msg)
		if err == nil {
			return nil
		}
		// The master's socket was closed or replaced: dial it afresh, once.
		if attempt == 0 && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTCONN) ||
			errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOENT)) {
			n.conn.Close()
			n.conn = nil
			continue
		}
		return err
	}
}

// write sends msg on n.conn: first without waiting, the common case costing
// one syscall; if the master's queue is full, waiting up to notifySendTimeout.
func (n *notifyClient) write(msg []byte) error {
	err := notifyWriteNow(n.conn, msg)
	if !errors.Is(err, syscall.EAGAIN) {
		return err
	}
	if err := n.conn.SetWriteDeadline(time.Now().Add(notifySendTimeout)); err != nil {
		return err
	}
	_, err = n.conn.Write(msg)
	n.conn.SetWriteDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("master's notify queue full for %v: %w", notifySendTimeout, err)
	}
	return err
}
