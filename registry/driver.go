package registry

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// A Driver opens registries of one type, as a database/sql driver opens
// databases. The drivers of nsfd register themselves when their package is
// imported:
//
//	import _ "github.com/nsfd/nsfd/registry/sqlite"   // type = sqlite (cgo)
//	import _ "github.com/nsfd/nsfd/registry/postgres" // type = postgres
//
// so a program links only the engines it opens: a worker or a client that
// resolves names through the master (client.FromEnv) links none.
type Driver interface {
	// Open opens the registry at dsn and brings its schema up to date; ctx
	// bounds the opening only. Errors never contain a password from dsn.
	Open(ctx context.Context, dsn string) (Registry, error)
}

var drivers struct {
	sync.RWMutex
	m map[string]Driver
}

// Register makes a driver available as type name to Open. It panics if name
// is registered twice or d is nil, as database/sql.Register does: both are
// mistakes of the program, not of its configuration.
func Register(name string, d Driver) {
	drivers.Lock()
	defer drivers.Unlock()
	if d == nil {
		panic("registry: Register driver is nil")
	}
	if _, dup := drivers.m[name]; dup {
		panic("registry: Register called twice for driver " + name)
	}
	if drivers.m == nil {
		drivers.m = map[string]Driver{}
	}
	drivers.m[name] = d
}

// Drivers returns the names of the registered drivers, sorted.
func Drivers() []string {
	drivers.RLock()
	defer drivers.RUnlock()
	var names []string
	for n := range drivers.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// driverImports is the package that registers each of nsfd's types.
var driverImports = map[string]string{
	TypeSQLite:   "github.com/nsfd/nsfd/registry/sqlite",
	TypePostgres: "github.com/nsfd/nsfd/registry/postgres",
}

// Open opens the registry of type typ (TypeSQLite or TypePostgres) at dsn
// through its registered Driver, and brings its schema up to date. For
// SQLite, dsn is the database file's path; the file (mode 0640) and its
// directory (0750) are created if missing. For PostgreSQL, it is a URL
// (postgres://user:pass@host/db) or key=value string (host=/run/postgresql
// dbname=nsfd). ctx bounds the opening only. Errors never contain a password
// from dsn. A type whose driver this program does not link fails with an
// error that names the import to add.
func Open(ctx context.Context, typ, dsn string) (Registry, error) {
	drivers.RLock()
	d := drivers.m[typ]
	drivers.RUnlock()
	if d != nil {
		return d.Open(ctx, dsn)
	}
	if imp, ok := driverImports[typ]; ok {
		return nil, fmt.Errorf("registry: type %q is not linked into this program: import _ %q", typ, imp)
	}
	return nil, fmt.Errorf("registry: unknown type %q (want %q or %q)", typ, TypeSQLite, TypePostgres)
}
