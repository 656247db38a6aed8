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
// the queue's spool are announced with NOTIFY and heard with LISTEN.
package postgres
