// Package sqlstore is the SQL that nsfd's registry drivers share: one
// schema with versioned migrations (schema.go) and one implementation of
// registry.Registry over database/sql (Store), for SQLite and PostgreSQL
// alike; a Dialect holds the little that differs (placeholders, the clock,
// error classes, locking, change notification). The drivers
// (registry/sqlite, registry/postgres) open their connections, fill in
// their Dialect and call New. It is internal to the module, not part of
// the registry's API: its one other user is the queue's spool, a table of
// the same database on the same connections (Of, Writer, Reader, InTx).
package sqlstore
