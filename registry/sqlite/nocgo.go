//go:build !cgo

package sqlite

import (
	"context"

	"github.com/nsfd/nsfd/registry"
)

func init() { registry.Register(registry.TypeSQLite, registryDriver{}) }

// registryDriver stands in for the SQLite driver in a program built without cgo.
type registryDriver struct{}

var _ registry.Driver = registryDriver{}

// Open fails with ErrNoCgo.
func (registryDriver) Open(context.Context, string) (registry.Registry, error) { return nil, ErrNoCgo }
