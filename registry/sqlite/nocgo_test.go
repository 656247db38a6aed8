//go:build !cgo

package sqlite_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/sqlite"
)

// TestOpenWithoutCgo (CGO_ENABLED=0 go test ./registry/sqlite, in make
// portable): a program built without cgo that is configured for SQLite
// says so when it opens the registry, and what to do instead.
func TestOpenWithoutCgo(t *testing.T) {
	_, err := registry.Open(context.Background(), registry.TypeSQLite, "/tmp/nsfd-never-created.db")
	if !errors.Is(err, sqlite.ErrNoCgo) || !strings.Contains(err.Error(), "built without cgo: use type = postgres, or build with CGO_ENABLED=1") {
		t.Fatalf("open sqlite without cgo: %v", err)
	}
}
