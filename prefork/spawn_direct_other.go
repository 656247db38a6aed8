//go:build linux && !cgo

package prefork

import "errors"

// haveDirectSpawn: without cgo, workers start through the exec shim.
const haveDirectSpawn = false

func spawnDirect(*DirectExec, []string, []int) (pid, pidfd int, childErr, err error) {
	return 0, -1, nil, errors.New("direct spawn needs cgo")
}
