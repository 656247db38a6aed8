package worker

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// Balance returns a listener that accepts as l does, for a worker that
// serves several connections at once and counts them with a Load (Begin,
// End): when a connection is pending, the worker holds two or more, and a
// live peer of its pool holds fewer and waits in accept, it leaves the
// connection to that peer for BalanceWait, and takes it only if it is
// still pending then.
//
// The workers of a pool share their listening sockets, and the kernel
// gives a pending connection to whichever of them accepts first: most
// often the one already running, which takes a whole burst of connections
// while its peers are still waking up, so that a few long-lived
// connections end up on one worker's core. Serve balances this way by
// itself; Balance is for a worker that accepts with its own loop, such as
// net/http's Server.Serve.
//
// Balance puts the worker on the pool's load board (EnvLoadBoard), where
// its peers read its count; Load.Stopping, or closing the returned
// listener, takes it off. Close the returned listener, not l: it also
// stops a goroutine waiting in its Accept. Without a board (no
// EnvLoadBoard, a platform without shared mappings, a full board), or if
// l has no file descriptor, Balance returns l itself.
func Balance(l net.Listener) net.Listener {
	b := theBoard()
	if !b.join() {
		return l
	}
	nb := newNBListener(l)
	if nb == nil {
		return l
	}
	return &balancedListener{Listener: l, nb: nb, board: b, wait: BalanceWait}
}

// balancedListener is Balance's listener.
type balancedListener struct {
	net.Listener
	nb     *nbListener
	board  *loadBoard
	wait   time.Duration // BalanceWait
	closed atomic.Bool
}

// Accept accepts as the listener does while the worker holds fewer than
// yieldFrom connections. From there it waits for a pending connection,
// leaves it to a less loaded peer for BalanceWait if the board names one,
// and accepts it if it is still there (or waits for the next one if
// another worker was quicker).
func (l *balancedListener) Accept() (net.Conn, error) {
	for {
		if l.board.busy() {
			l.board.wait(true)
			err := l.nb.waitPending()
			l.board.wait(false)
			if err != nil {
				if l.closed.Load() || errors.Is(err, net.ErrClosed) {
					return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
				}
				return nil, err
			}
			if l.board.yield() {
				time.Sleep(l.wait)
				if !l.nb.pending() {
					continue // a peer took it
				}
			}
		}
		// The listener's own Accept: accept4 and the runtime's poller,
		// cheaper than accepting without blocking (nbListener.acceptNow),
		// whose net.FileConn costs a dup and four more system calls.
		l.board.wait(true)
		c, err := l.Listener.Accept()
		l.board.wait(false)
		return c, err
	}
}

// Close takes the worker off the load board and closes the listener.
func (l *balancedListener) Close() error {
	l.closed.Store(true)
	l.board.leave()
	l.nb.Close()
	return l.Listener.Close()
}
