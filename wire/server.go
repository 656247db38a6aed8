package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Handler answers requests.
type Handler interface {
	// Handle returns the response to req. ctx is the connection's context:
	// it is cancelled when the server stops, and the response Handle then
	// returns is still sent. Handle may keep req. A nil response is sent as
	// CodeCommandFailed; a panic is recovered, logged and answered with
	// CodeCommandFailed.
	Handle(ctx context.Context, req *Request) *Response
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request) *Response

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req *Request) *Response { return f(ctx, req) }

var _ Handler = HandlerFunc(nil)

// ServerOptions configure Serve and ServeConn. The zero value is ready to
// use.
type ServerOptions struct {
	// Codec names the codec requests and responses are encoded with;
	// "" means DefaultCodec. An unknown name makes Serve and ServeConn fail
	// at once with an error wrapping ErrUnknownCodec.
	Codec string
	// MaxFrame is the largest frame payload accepted, and sent, in bytes;
	// 0 means DefaultMaxFrame. A request frame over it closes the
	// connection (after a CodeFailedClosing response); a response over it
	// is replaced by a CodeCommandFailed one.
	MaxFrame int
	// IdleTimeout bounds the wait for each request, from the previous
	// response (or the connection's start) to the request's last byte, and
	// the time writing each response may take; a connection that exceeds
	// it is closed. 0 means no limit.
	IdleTimeout time.Duration
	// Logger receives what the server does not return: recovered panics,
	// refused frames, failed writes. nil means slog.Default() (see package
	// worker on why slog).
	Logger *slog.Logger
	// Auth, if set, is asked before each request is handled; a request it
	// refuses is answered with its code (2200–2202) and never reaches the
	// Handler, and the MaxAuthFailures-th refusal on a connection closes
	// it (CodeAuthFailedClosing). nil means EnvAuth: the tokens file the
	// master names in NSFD_TOKENS (the daemon's `tokens` key), if any, so
	// that a daemon meant to check tokens does, whatever its code says.
	Auth Authenticator
	// TLS, if set, is spoken on every connection that is not a *tls.Conn
	// already: ServeConn does the handshake first (within IdleTimeout, or
	// HandshakeTimeout without one). Under nsfd, the worker library
	// (worker.Server) terminates TLS before ServeConn gets the
	// connection, as the daemon's tls_cert asks.
	TLS *tls.Config
}

// HandshakeTimeout bounds ServerOptions.TLS's handshake when there is no
// IdleTimeout.
const HandshakeTimeout = 10 * time.Second

// Server serves requests on the connections of a listener.
type Server struct {
	// Handler answers every request.
	Handler Handler
	// Options apply to every connection.
	Options ServerOptions
}

// Serve accepts connections on l and serves each in its own goroutine with
// h and the default options; it is (&Server{Handler: h}).Serve(ctx, l).
func Serve(ctx context.Context, l net.Listener, h Handler) error {
	return (&Server{Handler: h}).Serve(ctx, l)
}

// Serve accepts connections on l and serves each with ServeConn in its own
// goroutine until ctx is done; then it closes l, waits for the connections
// to finish (idle ones close at once, a request in progress is answered
// first) and returns nil. It fails at once for an unknown codec. Accept
// errors that can pass (a full file table, a timeout) are logged and
// retried with back-off; any other closes l, waits for the connections and
// is returned. One connection's failure never stops the others.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	defer l.Close()
	if s.Handler == nil {
		return errors.New("wire: Server has no Handler")
	}
	if _, err := Lookup(s.Options.Codec); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()

	var conns sync.WaitGroup
	defer conns.Wait()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retryable(err) {
				return wrap(err, "accept on %s", l.Addr())
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Options.logger().Warn("wire: accept failed; retrying", "addr", l.Addr().String(), "error", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		backoff = 0
		conns.Go(func() {
			if err := ServeConn(ctx, c, s.Handler, s.Options); err != nil {
				s.Options.logger().Warn("wire: connection failed", "error", err)
			}
		})
	}
}

// retryable reports whether an accept error may pass: a timeout, or one of
// the errors of a full file table or an aborted handshake.
func retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// logRequest is req for a log record: nil if there is none.
func logRequest(req *Request) any {
	if req == nil {
		return nil
	}
	return req
}

func (o *ServerOptions) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// aLongTimeAgo is a deadline in the past, which makes blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// ServeConn serves the requests on c with h, one after the other, each
// answered before the next is read, and closes c when it returns. It is the
// piece a prefork worker calls for each connection:
//
//	worker.HandlerFunc(func(ctx context.Context, c net.Conn) { wire.ServeConn(ctx, c, h, opts) })
//
// A frame whose payload does not decode is answered with CodeSyntaxError and
// the connection stays usable. A frame over opts.MaxFrame is answered with
// CodeFailedClosing and the connection closed: its payload was not read, so
// the stream cannot be resynchronised (before closing, ServeConn discards
// what the client still sends for up to 250 ms, so that the client can read
// the response). A json+gzip payload that expands beyond opts.MaxFrame is
// answered with CodeValueRange. A handler that panics is answered with
// CodeCommandFailed. Each response carries Meta.Transaction (the request's
// ID, or a generated one), Meta.Duration and Meta.User.
//
// When ctx is done ServeConn returns at the next request boundary: an idle
// connection closes at once, a request in progress is answered first.
// ServeConn returns nil when the client closed the connection between
// requests, the idle timeout passed or ctx is done; otherwise the error that
// ended the connection, such as one wrapping ErrFrameTooLarge or
// io.ErrUnexpectedEOF for a truncated frame, or ErrUnknownCodec at once.
// ServeConn logs (opts.Logger) what it does not return, such as recovered
// panics; what it returns is for the caller to log: Serve does.
func ServeConn(ctx context.Context, c net.Conn, h Handler, opts ServerOptions) error {
	defer c.Close()
	codec, err := Lookup(opts.Codec)
	if err != nil {
		return err
	}
	if h == nil {
		return errors.New("wire: ServeConn without a Handler")
	}
	if err := ctx.Err(); err != nil {
		return nil
	}
	if opts.TLS != nil {
		if _, ok := c.(*tls.Conn); !ok {
			tc := tls.Server(c, opts.TLS)
			d := opts.IdleTimeout
			if d <= 0 {
				d = HandshakeTimeout
			}
			hctx, cancel := context.WithTimeout(ctx, d)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				return wrap(err, "tls handshake with %s", c.RemoteAddr())
			}
			c = tc
			defer c.Close()
		}
	}
	sc := &serverConn{
		ctx:   ctx,
		c:     c,
		h:     h,
		opts:  &opts,
		codec: codec,
		auth:  opts.authenticator(),
		limit: opts.MaxFrame,
		br:    bufio.NewReaderSize(c, 4096),
		rbuf:  make([]byte, 0, 4096),
		wbuf:  make([]byte, 0, 4096),
	}
	if sc.limit <= 0 {
		sc.limit = DefaultMaxFrame
	}
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	return sc.serve()
}

// serverConn is one connection served by ServeConn.
type serverConn struct {
	ctx   context.Context
	c     net.Conn
	h     Handler
	opts  *ServerOptions
	codec Codec
	auth  Authenticator
	fails int // requests auth refused
	limit int
	br    *bufio.Reader
	rbuf  []byte
	wbuf  []byte

	txPrefix string // for generated transaction ids
	txSeq    uint64
}

func (sc *serverConn) serve() error {
	for {
		if sc.opts.IdleTimeout > 0 {
			sc.c.SetReadDeadline(time.Now().Add(sc.opts.IdleTimeout))
		}
		// After setting the deadline: a cancel from now on sets it to the
		// past, and one before is seen here.
		if sc.ctx.Err() != nil {
			return nil
		}
		frame, err := ReadFrame(sc.br, sc.rbuf, sc.limit)
		if err != nil {
			return sc.readFailed(err)
		}
		if cap(frame) <= maxPooled {
			sc.rbuf = frame[:0]
		}
		start := time.Now()
		req := new(Request)
		var resp *Response
		if err := decode(sc.codec, frame, req, sc.limit); err != nil {
			code := CodeSyntaxError
			if errors.Is(err, ErrDecodedTooLarge) {
				code = CodeValueRange
			}
			req, resp = nil, Failf(code, "%s", strings.TrimPrefix(err.Error(), "wire: "))
		} else if err := sc.auth.Authorize(sc.ctx, req); err != nil {
			resp = Fail(err)
			if sc.fails++; sc.fails >= MaxAuthFailures {
				resp = &Response{Code: CodeAuthFailedClosing,
					Message: Message(CodeAuthFailedClosing) + ": " + resp.Message}
				if sc.respond(req, resp, start) == nil {
					sc.lingerClose()
				}
				return nil
			}
		} else {
			resp = sc.handle(req)
		}
		if err := sc.respond(req, resp, start); err != nil {
			return err
		}
	}
}

// readFailed logs and classifies the error that ended reading.
func (sc *serverConn) readFailed(err error) error {
	switch {
	case err == io.EOF:
		return nil // the client closed between requests
	case errors.Is(err, ErrFrameTooLarge):
		resp := &Response{Code: CodeFailedClosing, Message: Message(CodeFailedClosing) + ": " + err.Error()}
		if sc.respond(nil, resp, time.Now()) == nil {
			sc.lingerClose()
		}
		return wrap(err, "request from %s", sc.c.RemoteAddr())
	case errors.Is(err, os.ErrDeadlineExceeded):
		if sc.ctx.Err() != nil || sc.opts.IdleTimeout > 0 {
			return nil // cancelled, or idle
		}
	}
	return wrap(err, "read request from %s", sc.c.RemoteAddr())
}

// Lingering after a refused frame: how long, and how much of what the
// client still sends is read and discarded.
const (
	lingerTime  = 250 * time.Millisecond
	lingerBytes = 1 << 20
)

// lingerClose half-closes the connection and discards what the client
// still sends, for a bounded time and amount, so that closing does not
// reset the connection before the client has read the last response.
func (sc *serverConn) lingerClose() {
	cw, ok := sc.c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	sc.c.SetReadDeadline(time.Now().Add(lingerTime))
	if sc.ctx.Err() != nil {
		return
	}
	io.CopyN(io.Discard, sc.br, lingerBytes)
}

// handle runs the handler, turning a panic or a nil response into
// CodeCommandFailed.
func (sc *serverConn) handle(req *Request) (resp *Response) {
	defer func() {
		if p := recover(); p != nil {
			sc.opts.logger().Error("wire: handler panicked", "remote", sc.c.RemoteAddr().String(), "request", req,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp = Failf(CodeCommandFailed, "internal error")
		}
	}()
	resp = sc.h.Handle(sc.ctx, req)
	if resp == nil {
		sc.opts.logger().Error("wire: handler returned no response", "remote", sc.c.RemoteAddr().String(), "request", req)
		resp = Failf(CodeCommandFailed, "no response")
	}
	return resp
}

// respond fills in resp's defaults and meta and writes it; req is nil when
// there was none. It does not change a handler's Response in place beyond
// its Code, Message and Meta.
func (sc *serverConn) respond(req *Request, resp *Response, start time.Time) error {
	out := *resp
	if out.Code == 0 {
		out.Code = CodeOK
	}
	if out.Message == "" {
		out.Message = Message(out.Code)
	}
	if req != nil {
		if out.Meta.Transaction == "" {
			out.Meta.Transaction = req.ID
		}
		if out.Meta.User == "" {
			out.Meta.User = req.User
		}
	}
	if out.Meta.Transaction == "" {
		out.Meta.Transaction = sc.newTransaction()
	}
	out.Meta.Duration = time.Since(start)

	var err error
	sc.wbuf, err = AppendFrame(sc.wbuf[:0], sc.codec, &out, sc.limit)
	if err != nil {
		sc.opts.logger().Error("wire: response could not be sent", "remote", sc.c.RemoteAddr().String(), "request", logRequest(req), "error", err)
		fail := &Response{
			Code:    CodeCommandFailed,
			Message: Message(CodeCommandFailed) + ": response could not be sent: " + err.Error(),
			Meta:    out.Meta,
		}
		if sc.wbuf, err = AppendFrame(sc.wbuf[:0], sc.codec, fail, sc.limit); err != nil {
			return wrap(err, "encode error response")
		}
	}
	if sc.opts.IdleTimeout > 0 {
		sc.c.SetWriteDeadline(time.Now().Add(sc.opts.IdleTimeout))
	}
	_, err = sc.c.Write(sc.wbuf)
	if cap(sc.wbuf) > maxPooled {
		sc.wbuf = nil
	}
	if err != nil {
		return wrap(err, "write response to %s", sc.c.RemoteAddr())
	}
	return nil
}

// newTransaction returns a transaction id unique to this connection and,
// with high probability, across connections: a random prefix and a count.
func (sc *serverConn) newTransaction() string {
	if sc.txPrefix == "" {
		sc.txPrefix = strconv.FormatUint(rand.Uint64(), 36) + "-"
	}
	sc.txSeq++
	return sc.txPrefix + strconv.FormatUint(sc.txSeq, 10)
}
