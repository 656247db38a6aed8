//go:build !linux

package prefork

// procFS has nothing to read here: each worker's own socket names it.
var procFS procReader = noProc{}

type noProc struct{}

var _ procReader = noProc{}

func (noProc) stat(int) (int, uint64, error) { return 0, 0, errNoProc }
func (noProc) cgroup(int) (string, error)    { return "", errNoProc }

// workerGroupPath: no control groups here.
func workerGroupPath(*worker) string { return "" }
