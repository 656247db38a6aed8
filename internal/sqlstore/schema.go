package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// A migration is one step of the schema, applied once, in version order, by
// Open. Its statements are written once for both engines in the SQL they
// share; dialect.render fills in the few words they spell differently
// ({{now}}, {{autoid}}). Never edit a released migration: add the next one.
//
// Migration 2 adds the spool of async calls (queue's spool.go); migration 3
// records which endpoints want TLS, and the name their certificate is
// verified against (rows of older registries default to plain); migration
// 4 marks the endpoints of a daemon whose health check fails (rows of older
// registries default to healthy).
type migration struct {
	version int
	name    string
	stmts   []string
}

// Times are unix milliseconds in BIGINT columns: they compare correctly and
// read the same on both engines. Endpoints keep their registration order in
// seq; Resolve's ordering depends on it.
var migrations = []migration{
	{1, "daemons, endpoints, workers", []string{
		`CREATE TABLE daemons (
			node         TEXT    NOT NULL,
			name         TEXT    NOT NULL,
			state        TEXT    NOT NULL,
			encoding     TEXT    NOT NULL DEFAULT '',
			master_pid   INTEGER NOT NULL,
			config_hash  TEXT    NOT NULL DEFAULT '',
			started_at   BIGINT  NOT NULL,
			heartbeat_at BIGINT  NOT NULL,
			last_exit    TEXT    NOT NULL DEFAULT '',
			PRIMARY KEY (node, name)
		)`,
		// Resolve: WHERE name = ? AND state = 'running'.
		`CREATE INDEX daemons_by_name ON daemons (name, state)`,
		// PurgeStale.
		`CREATE INDEX daemons_by_heartbeat ON daemons (heartbeat_at)`,
		`CREATE TABLE endpoints (
			node    TEXT    NOT NULL,
			daemon  TEXT    NOT NULL,
			seq     INTEGER NOT NULL,
			proto   TEXT    NOT NULL,
			address TEXT    NOT NULL,
			PRIMARY KEY (node, daemon, seq),
			FOREIGN KEY (node, daemon) REFERENCES daemons (node, name) ON DELETE CASCADE
		)`,
		`CREATE TABLE workers (
			node       TEXT    NOT NULL,
			daemon     TEXT    NOT NULL,
			pid        INTEGER NOT NULL,
			slot       INTEGER NOT NULL,
			state      TEXT    NOT NULL,
			started_at BIGINT  NOT NULL,
			requests   BIGINT  NOT NULL DEFAULT 0,
			last_exit  TEXT    NOT NULL DEFAULT '',
			PRIMARY KEY (node, daemon, pid),
			FOREIGN KEY (node, daemon) REFERENCES daemons (node, name) ON DELETE CASCADE
		)`,
	}},
	// The spool of async calls: the queue daemon's jobs. id is the job id
	// ("<hash>@<node>", made by whoever puts the job); request and response
	// are JSON texts, response NULL until a result lands. Not tied to the
	// daemons table: a job outlives the daemon instance that took it.
	{2, "spool", []string{
		`CREATE TABLE spool (
			id         TEXT   NOT NULL PRIMARY KEY,
			daemon     TEXT   NOT NULL,
			status     TEXT   NOT NULL,
			request    TEXT   NOT NULL DEFAULT '',
			response   TEXT,
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL
		)`,
		// ListJobs by status (and the queue's "virgin" listing), oldest
		// first; PurgeJobs by status and age.
		`CREATE INDEX spool_by_status ON spool (status, created_at)`,
	}},
	// Secured calls: tls is 1 when the daemon serves TLS on the endpoint
	// (registry.Endpoint.TLS), server_name the name a client verifies its
	// certificate against ("": the address's host).
	{3, "endpoint tls", []string{
		`ALTER TABLE endpoints ADD COLUMN tls INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE endpoints ADD COLUMN server_name TEXT NOT NULL DEFAULT ''`,
	}},
	// Health checks: unhealthy is 1 while the daemon's health check fails
	// on the endpoint's node (registry.Endpoint.Unhealthy); Resolve
	// leaves such endpoints out while a healthy one exists.
	{4, "endpoint health", []string{
		`ALTER TABLE endpoints ADD COLUMN unhealthy INTEGER NOT NULL DEFAULT 0`,
	}},
}

// SchemaVersion is the version New brings a registry to; its migrations are
// numbered 1 to SchemaVersion.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate applies the missing migrations in one transaction. A registry that
// is already current costs one read and takes no write lock, so clients that
// only resolve can open it cheaply and concurrently. Two masters opening a new
// registry at once are serialized by the dialect's lock (BEGIN IMMEDIATE for
// SQLite, an advisory lock for PostgreSQL); the second finds the work done.
func migrate(ctx context.Context, db *sql.DB, d *Dialect) error {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err == nil &&
		v.Valid && int(v.Int64) >= SchemaVersion() {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback() // after Commit, a no-op
	if d.LockMigrations != "" {
		if _, err := tx.ExecContext(ctx, d.LockMigrations); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	insert := d.Render(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, {{now}})`)
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := tx.ExecContext(ctx, d.Render(stmt)); err != nil {
				return fmt.Errorf("migrate: version %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, insert, m.version, m.name); err != nil {
			return fmt.Errorf("migrate: version %d: %w", m.version, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// A Dialect is what differs between the engines: placeholders, a few SQL
// words, error classification, locking, and how a change is announced to
// other processes. Each driver fills in its own.
type Dialect struct {
	// Now is an SQL expression for the current time in unix milliseconds.
	Now string
	// AutoID is the column definition of an auto-incremented primary key.
	AutoID string
	// Numbered: placeholders are $1, $2, … rather than ?.
	Numbered bool
	// LockMigrations is run first in the migration transaction.
	LockMigrations string
	// IsForeignKey reports a foreign-key violation: the daemon row a
	// worker refers to is missing.
	IsForeignKey func(error) bool
	// Scrub removes secrets from an error's text.
	Scrub func(error) error
	// Notify is the SQL that announces a change to the listeners of a
	// channel, with two parameters (the channel, then a key), run in the
	// changing transaction; "" if the engine has none, and Listen then
	// watches the database itself.
	Notify string
	// Listen watches s's database for changes until ctx ends or the watch
	// fails: it calls listening once it watches, wake(key) for a change a
	// Notify on channel announced, and wake("") for a change it cannot
	// tell apart (a write to the database). It returns why it stopped.
	Listen func(ctx context.Context, s *Store, channel string, listening func(), wake func(key string)) error
}

// Render turns the SQL text shared by the engines ({{now}}, {{autoid}},
// ? placeholders) into the dialect's.
func (d *Dialect) Render(q string) string {
	q = strings.NewReplacer("{{now}}", d.Now, "{{autoid}}", d.AutoID).Replace(q)
	if !d.Numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
