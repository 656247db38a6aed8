// Package wire is the message layer of nsfd's framework daemons: the
// request/response envelope of the Perl Net::Server::Framework, its EPP
// result codes, pluggable codecs, length-prefixed frames, the server loop a
// daemon runs on each connection, and the client-side Conn that the client
// package pools. It needs no cgo and nothing from nsfd but package worker (the
// protocol's names), so a worker binary links only worker and wire.
//
// # Messages
//
// A client sends a Request and the daemon answers with a Response:
//
//	request   {"command":"put","user":"ann","id":"42","data":{...},"options":{...}}
//	response  {"code":1000,"message":"Command completed successfully","data":{...},
//	           "meta":{"transaction":"42","duration":0.000153,"user":"ann"}}
//
// Data is JSON text whatever the codec. Code is an EPP result code (RFC
// 4930) as the Perl framework's Errorcodes has them: 1000–1999 report
// success (1001, CodePending, an accepted command whose result comes
// later), 2000 and up an error, and 2500–2502 also that the server closes
// the connection. Message gives each code's text, Response.Err turns an
// error code into an *Error. The server fills in Meta: the request's ID as
// the transaction (or a generated id), the time it took in seconds, and the
// user. A request's Pass is never sent back.
//
// # Codecs
//
// A Codec encodes messages into frame payloads and back, the Perl
// framework's encode and decode. "json" is the default and "json+gzip"
// compresses it; others can be added with Register. A daemon's codec name is
// stored in the registry, so its clients pick the same one. A decoder whose
// input expands (json+gzip) is bounded by the frame limit, so a small frame
// cannot inflate to exhaust memory.
//
// # Frames
//
// On the connection each message is one frame:
//
//	+--------+--------+--------+--------+=====================+
//	|    payload length, big-endian     |  payload (codec)    |
//	+--------+--------+--------+--------+=====================+
//
// A connection carries many requests, each answered in order before the
// next is read. A length over the limit (DefaultMaxFrame, 16 MiB, unless
// configured) is refused before any of the payload is read or allocated;
// as the stream cannot then be resynchronised, the server answers
// CodeFailedClosing and closes the connection. A payload that does not
// decode is answered with CodeSyntaxError and the connection stays usable;
// an unknown command (with a Mux) with CodeUnknownCommand; a handler panic
// with CodeCommandFailed. None of these stops the server.
//
// # Serving
//
// A daemon's handler is usually a Mux, which routes by command and is the
// list of allowed commands. Serve serves a listener; ServeConn serves one
// connection and is what a worker (package worker) runs for each one:
//
//	mux := wire.NewMux()
//	mux.RouteFunc("get", get)
//	worker.Serve(ctx, worker.HandlerFunc(func(ctx context.Context, c net.Conn) {
//		if err := wire.ServeConn(ctx, c, mux, wire.ServerOptions{}); err != nil {
//			log.Print(err)
//		}
//	}))
//
// When ctx is done, ServeConn closes an idle connection at once and finishes
// the request in progress first.
//
// # Secured calls
//
// ServerOptions.TLS serves TLS (under nsfd the worker library does it, as
// the daemon's tls_cert asks), and ServerOptions.Auth checks every request
// before the handler: a Tokens file of bcrypt hashes per user by default
// when the master names one (EnvAuth, the daemon's tokens key). A refused
// request is answered with CodeInvalidAuthInfo, CodeAuthentication or
// CodeAuthorization, the third refusal on a connection with
// CodeAuthFailedClosing; see docs/wire.md.
package wire
