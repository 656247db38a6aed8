package registry

import (
	"context"
	"time"
)

// AnyName is the name a Watcher reports when it cannot tell which daemons
// changed: every cached resolution may be out of date.
const AnyName = ""

// Watcher is implemented by registries that announce their changes to
// other processes: the PostgreSQL driver (LISTEN/NOTIFY), and the SQLite
// driver (a watch on the database file, which cannot tell names apart).
// Clients use it to drop a cached resolution as soon as it changes, instead
// of when a time to live runs out.
type Watcher interface {
	// Watch calls changed(name) after every change to the daemons called
	// name that Register, SetState or Unregister made, in any process, and
	// changed(AnyName) when it cannot tell which (a purge; SQLite's every
	// write). It calls ready once it is watching: changes made before may
	// have been missed. It returns when ctx ends or the watch fails (the
	// database is unreachable), with why; the caller may watch again,
	// assuming it missed changes meanwhile. changed and ready are called
	// from one goroutine and should not block.
	Watch(ctx context.Context, ready func(), changed func(name string)) error
}

// Clock is implemented by registries that tell the time by the clock that
// stamps their heartbeats (the database server's, for PostgreSQL), so that
// a heartbeat's age can be judged from any host, whatever its own clock
// says.
type Clock interface {
	// Now returns the registry's current time, millisecond precision.
	Now(ctx context.Context) (time.Time, error)
}
