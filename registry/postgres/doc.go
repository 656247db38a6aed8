// Package postgres is the PostgreSQL driver of the registry: importing it
// makes registry.Open accept type "postgres", one registry and one
// namespace of daemons shared by many hosts.
//
//	import _ "github.com/nsfd/nsfd/registry/postgres"
//
// It is pure Go (pgx): connections come from a pgxpool.Pool, which replaces
// broken ones (a restarted server), with database/sql on top so that both
// engines share one implementation (internal/sqlstore). The database
// server's clock stamps heartbeats, so masters on several hosts need not
// agree on the time; migrations are serialized by an advisory lock. A
// password in the DSN never appears in an error (registry.Scrub). Changes to
// the registry (channel nsfd_registry, the daemon's name as payload) and to
// the queue's spool (nsfd_spool) are announced with NOTIFY in their
// transaction and heard with LISTEN on a connection of its own
// (registry.Watcher). DSNs with several hosts and target_session_attrs,
// and sslmode=verify-full, are pgx's (docs/fleet.md).
package postgres
