// Package client calls nsfd's framework daemons by name: it resolves the
// name through the registry, dials one of the daemon's endpoints with
// fail-over, and sends wire requests over pooled persistent connections in
// the encoding the daemon registered. It succeeds Net::Server::Framework's
// Client (c_connect, talk), without its defects: one request per connection,
// a fail-over loop that never ran, and async results polled every 100 ms.
//
//	c := client.New(reg, client.Options{LocalNode: "alpha"})
//	defer c.Close()
//	req, _ := wire.NewRequest("get", map[string]string{"key": "a"})
//	resp, err := c.Call(ctx, "kv", req)
//
// # Resolving and fail-over
//
// Resolve asks the registry for a name's endpoints and keeps the answer.
// When the registry announces its changes (registry.Watcher: PostgreSQL's
// LISTEN/NOTIFY, SQLite's file watch, or the master's resolver socket,
// which forwards its own), the Client watches it, and an answer is used
// until a change of its name is announced, or for at most Options.MaxAge
// (a node that dies announces nothing; that is when its heartbeat goes
// stale); without a watch, or while it is down, for Options.CacheTTL
// (1 s). While the registry is unreachable, the last answer is used, and
// for Options.MaxAge after it first answered again an answer that every
// endpoint is stale is taken for the outage it is (the masters could not
// write their heartbeats either) and the last answer is used too. The
// endpoints of the local node come first; among the endpoints
// of one rank (the local node's, then the others') calls go round robin, so
// load spreads. An endpoint that cannot be dialled is marked down for
// Options.DownFor (5 s) and skipped, the call moving on to the next one;
// after that time it is tried again, and if every endpoint is down they are
// all tried anyway. A node cut off the network answers no connect: a dial
// gives up after Options.DialTimeout (2 s); a request sent on a connection
// it held fails once the peer's kernel has not acknowledged it for
// Options.AckTimeout (2 s, TCP_USER_TIMEOUT), which marks the endpoint down
// and drops its idle connections too. Every blocking step honours the
// context's deadline and cancellation.
//
// # Secured calls
//
// An endpoint the registry records as wanting TLS (its daemon has
// tls_cert) is spoken to over TLS: the daemon's certificate is verified
// against Options.TLS's RootCAs (the system's without) and the name its
// master registered (the certificate's first DNS name), else the address's
// IP; Options.TLS's Certificates are presented to daemons that want mutual
// TLS. Options.Credential, USER:TOKEN, is sent with every request for
// daemons that check tokens (wire.Tokens); read it with ReadCredential
// from a file only its owner can read. FromEnv takes all of these from the
// environment (NSFD_CA, NSFD_CLIENT_CERT, NSFD_CLIENT_KEY,
// NSFD_SERVER_NAME, NSFD_TOKEN_FILE, NSFD_TOKEN).
//
// # Connections
//
// Each endpoint has a pool of idle connections (at most Options.MaxIdle,
// dropped after Options.IdleTimeout), so that a call costs one round trip.
// Before a pooled connection is reused, a non-blocking peek checks that the
// server has not closed it (a worker that reached max_requests or drained);
// such a connection is dropped and another taken. If a reused connection
// still fails before any of the response arrived (the server closed it as
// the request was sent: a reset, a broken pipe, an end of file), the
// request is sent once more on a new connection, to the next endpoint if
// there is one (this one may be going away). A wire server never closes a
// connection holding an unanswered request unless its worker dies in the
// middle of it, so in that rare case a request can run twice: commands with
// side effects should be idempotent, or carry an ID the daemon checks. A new
// connection that fails that way is not retried (the request may have run):
// the call fails, and the endpoint is marked down. So when a node is killed,
// the calls its workers were serving at that moment may fail; the following
// ones go to the other endpoints.
//
// Each idle connection holds one of the daemon's connection slots: with
// Net::Server::PreFork's one connection per worker, a whole worker. Framework
// daemons written in Go serve many connections per worker
// (worker.Server.Concurrency); keep MaxIdle small for daemons that do not.
//
// # Asynchronous calls
//
// A daemon may accept a command and answer later: it puts a job into the
// spool through the queue daemon (Enqueue), answers wire.CodePending (1001)
// with the job's id (Accepted), and stores the result when it has one
// (Finish). Call then waits for that result and returns it as if the daemon
// had answered at once; CallAsync returns a Pending whose Wait does so
// later. Waiting is a `wait` request to the queue daemon, which holds it
// until the result lands (it wakes on PostgreSQL's NOTIFY, or on a write to
// the SQLite database; see queue.Spool) or until a server-side bound,
// and is then repeated, until the context ends.
//
// The queue daemon's commands, their data and its job ids are package
// queue's (queue.CmdPut, queue.SpoolArgs, queue.Job).
//
// # Resolvers
//
// A Client resolves names through a Resolver: a registry.Registry the
// program opened (then it imports the registry's driver, as database/sql
// programs do: registry/sqlite or registry/postgres), or, in a worker, the
// master's resolver socket, whose path the master passes in NSFD_RESOLVER
// (registry/remote). FromEnv picks the socket when it is set, so a framework
// daemon links no database driver and builds with CGO_ENABLED=0.
package client
