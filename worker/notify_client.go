package worker

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
//	worker.Notify(worker.NotifyReady, worker.NotifyStatus+"warm")
//
// The master knows the sender by the pid the kernel attaches to the
// datagram, so only the worker process itself can report for itself.
//
// Notify is safe for concurrent use and cheap: the socket is opened on first
// use and kept. It never blocks for long: when the master's queue is full it
// waits at most half a second for room, then returns an error.
func Notify(state ...string) error {
	return notifyTo(os.Getenv(EnvNotifySocket), state...)
}

// notifyTo is Notify to the socket addr.
func notifyTo(addr string, state ...string) error {
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

// Busy counts a request that starts and reports the worker busy: BUSY=1
// with the count of requests so far (REQUESTS=n), sent at once unless the
// master still has the worker busy because the report of an Idle is still
// deferred. Serve reports busy and idle on its own; Busy and Idle are for
// workers that serve one request at a time and accept by themselves (a
// worker that serves several at once uses a Load of its own). They share
// one Load with Concurrency 1: see Load for how reports are coalesced.
// Busy returns the error of a report it sent.
func Busy() error { return defaultLoad.begin(true) }

// Idle marks the request as done: BUSY=0 and the count are reported
// DefaultIdleGrace later, unless Busy comes first. The report is deferred,
// so its errors go to slog.Default(), not to Idle's
// result.
func Idle() error { return defaultLoad.end() }

// Stopping sends STOPPING=1 with the count of Busy calls (REQUESTS=n): for
// a worker that uses Busy and Idle, when it leaves.
func Stopping() error { return defaultLoad.Stopping() }

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
