package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// ErrConnClosed is returned (wrapped) by Call on a Conn that was closed, or
// that the server said it closes (codes 2500–2502).
var ErrConnClosed = errors.New("wire: connection closed")

// Conn is the client side of one connection to a wire server: it sends
// requests and reads their responses, one call at a time, in order. Calls
// from several goroutines are safe and take turns. After an error on the
// connection (a failed write or read, a cancelled call, a malformed
// response) the Conn is unusable: Err reports it, and every later Call
// returns it. A pool drops such a Conn and dials a new one.
type Conn struct {
	nc    net.Conn
	codec Codec
	limit int
	br    *bufio.Reader

	turn   chan struct{} // one token: the right to call
	closed atomic.Bool

	// Held with the turn.
	wbuf, rbuf  []byte
	deadlineSet bool
	err         error
}

// NewConn returns a Conn speaking to the server at the other end of nc with
// codec (nil: DefaultCodec), refusing frames over maxFrame bytes (0:
// DefaultMaxFrame) both ways. The Conn owns nc.
func NewConn(nc net.Conn, codec Codec, maxFrame int) *Conn {
	if codec == nil {
		codec, _ = Lookup(DefaultCodec)
	}
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &Conn{
		nc:    nc,
		codec: codec,
		limit: maxFrame,
		br:    bufio.NewReaderSize(nc, 4096),
		turn:  make(chan struct{}, 1),
		wbuf:  make([]byte, 0, 1024),
		rbuf:  make([]byte, 0, 4096),
	}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Codec returns the codec c speaks.
func (c *Conn) Codec() Codec { return c.codec }

// Call sends req and returns the server's response. The error is about the
// call, not its result: a response with an error code is returned with a
// nil error, and its Err method gives the code as an error.
//
// Call honours ctx's deadline and cancellation while waiting for its turn,
// writing and reading; an error from ctx ending wraps ctx.Err(). A request
// over the frame limit fails with an error wrapping ErrFrameTooLarge and
// leaves c usable; any other failure makes c unusable (see Err).
func (c *Conn) Call(ctx context.Context, req *Request) (*Response, error) {
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, wrap(ctx.Err(), "call %q", req.Command)
	}
	defer func() { <-c.turn }()
	if c.err == nil && c.closed.Load() {
		c.err = ErrConnClosed
	}
	if c.err != nil {
		return nil, c.err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(err, "call %q", req.Command)
	}

	var err error
	c.wbuf, err = AppendFrame(c.wbuf[:0], c.codec, req, c.limit)
	if err != nil {
		return nil, wrap(err, "call %q", req.Command)
	}

	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline || c.deadlineSet {
		c.nc.SetDeadline(deadline) // the zero time clears it
		c.deadlineSet = hasDeadline
	}
	var cancelled chan struct{}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		cancelled = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			c.nc.SetDeadline(aLongTimeAgo)
			close(cancelled)
		})
	}

	resp, err := c.roundTrip()
	if !stop() {
		// ctx ended during the call and poisoned the deadline: wait for
		// that to be done, and undo it if the call got through anyway.
		<-cancelled
		if err == nil {
			c.nc.SetDeadline(deadline)
		}
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w: %w", err, ctxErr)
		} else if hasDeadline && isTimeout(err) && !time.Now().Before(deadline) {
			err = fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
		}
		c.err = wrap(err, "call %q", req.Command)
		return nil, c.err
	}
	if ClosesConnection(resp.Code) {
		c.err = fmt.Errorf("%w by the server: %d %s", ErrConnClosed, resp.Code, resp.Message)
		c.nc.Close()
	}
	return resp, nil
}

// roundTrip writes the frame in c.wbuf and reads and decodes the response.
func (c *Conn) roundTrip() (*Response, error) {
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return nil, wrap(err, "write")
	}
	if cap(c.wbuf) > maxPooled {
		c.wbuf = nil
	}
	frame, err := ReadFrame(c.br, c.rbuf, c.limit)
	if err != nil {
		return nil, wrap(err, "read")
	}
	if cap(frame) <= maxPooled {
		c.rbuf = frame[:0]
	}
	resp := new(Response)
	if err := decode(c.codec, frame, resp, c.limit); err != nil {
		return nil, wrap(err, "decode response")
	}
	return resp, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Err returns the error that made c unusable, or nil while it can carry
// calls.
func (c *Conn) Err() error {
	if c.closed.Load() {
		return ErrConnClosed
	}
	select {
	case c.turn <- struct{}{}:
		defer func() { <-c.turn }()
		return c.err
	default:
		return nil // a call is in progress, so c was usable when it began
	}
}

// Close closes the connection: a Call in progress fails, and later ones
// return ErrConnClosed.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.nc.Close()
}
