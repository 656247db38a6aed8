// Package registry is nsfd's central registry: where daemons are found by
// name. It succeeds Net::Server::Framework's `services` table, keyed on
// (node, name) rather than on the name alone, so that several hosts may run
// the same daemon and clients spread over them.
//
// The master of each node writes it: Register once a daemon's listeners are
// bound and its first worker is ready (with the real, bound addresses),
// WorkerStarted and WorkerExited on spawns and exits, SyncWorkers with the
// request counters now and then, Heartbeat every `[registry] heartbeat`,
// SetState(StateStopping) then Unregister when a daemon stops, and PurgeNode
// on start-up to clear what a crashed predecessor left. None of this is on
// the request path: a request never causes a write. Clients and
// `nsfd resolve` read it with Resolve, which returns only running daemons
// whose heartbeat is fresh, the local node's endpoints first.
//
// The package holds the Registry interface, its types and errors, and a
// driver registry in the style of database/sql: the engines are
// subpackages that register themselves when imported, and share one schema
// and one implementation (internal/sqlstore):
//
//	import _ "github.com/nsfd/nsfd/registry/sqlite"   // one host (cgo)
//	import _ "github.com/nsfd/nsfd/registry/postgres" // many hosts, one namespace
//
//	registry.Open(ctx, "sqlite", "/var/lib/nsfd/registry.db")
//	registry.Open(ctx, "postgres", "postgres://nsfd:pw@db/nsfd")
//
// Open of a type whose driver the program does not link fails and names
// the import to add. SQLite runs in WAL mode with a busy timeout, so the
// master, `nsfd resolve` and clients may open the same file at once;
// PostgreSQL is how several hosts share a registry. Open applies the schema
// migrations in a transaction (versions in schema_migrations), serialized
// between processes. Package remote serves Resolve to the master's workers
// over a UNIX socket, so that they need no driver at all.
//
// The tables, as `sqlite3 var/registry.db .schema` shows them; times are unix
// milliseconds:
//
//	daemons(node, name, state, encoding, master_pid, config_hash, started_at, heartbeat_at, last_exit)
//	endpoints(node, daemon, seq, proto, address, tls, server_name)  -- cascade-deleted with the daemon; tls, server_name: migration 3
//	workers(node, daemon, pid, slot, state, started_at, requests, last_exit)  -- likewise
//	spool(id, daemon, status, request, response, created_at, updated_at)     -- async calls (migration 2; queue.Spool)
//
// The drivers' registries are also Watchers (a change is announced to
// every process: PostgreSQL's NOTIFY, SQLite's file) and Clocks (the time
// that stamps heartbeats). Passwords in a PostgreSQL DSN never appear in an
// error; Redact hides them for logs.
package registry
