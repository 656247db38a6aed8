//go:build !linux

package prefork

import (
	"context"
	"errors"
)

// errNoHandover is the error of a hand-over on a system without one.
var errNoHandover = errors.New("in-place upgrade: Linux only")

// Freeze is Linux only (pool_handover_linux.go).
func (p *Pool) Freeze(ctx context.Context) (PoolHandover, func(), error) {
	return PoolHandover{}, nil, errNoHandover
}

// AdoptPool is Linux only (pool_handover_linux.go).
func AdoptPool(cfg Config, h PoolHandover) (*Pool, error) { return nil, errNoHandover }
