//go:build !linux

package pgtest

import (
	"errors"
	"runtime"
)

// enterNetNS only unlocks the thread when done: network namespaces are
// Linux's.
func enterNetNS(path string) (leave func(), err error) {
	if path == "" {
		return runtime.UnlockOSThread, nil
	}
	return nil, errors.New("pgtest: network namespaces are Linux's")
}
