// Package remote serves a registry's Resolve over HTTP+JSON, and calls it:
// the master serves it to its own workers on a UNIX socket in run_dir (its
// path in NSFD_RESOLVER), so that a worker resolves names without opening
// the registry. A worker then needs no database driver (no cgo for SQLite),
// no access to the database file, and no PostgreSQL password.
//
//	GET /v1/resolve/{name}[?local=NODE][&max_age=DURATION]
//
//	200 {"endpoints": [{"node", "daemon", "proto", "address", "encoding"}, ...]}
//	404 {"error": "resolve \"kv\": not registered", "reason": "not_found"}   (or "stale")
//	503 {"error": "..."}                                                     the registry cannot be read
//	400 {"error": "..."}                                                     a bad name or query
//
// The answer is the registry's, with its order and its errors:
// Client.Resolve's errors wrap registry.ErrNotFound and registry.ErrStale as
// the registry's own do. Only Resolve is served; nothing can be written.
package remote
