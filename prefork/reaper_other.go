//go:build !linux

package prefork

// startTracked runs start, a fork that returns the child's pid. There is no
// orphan reaper off Linux to keep the child from.
// It returns no forget.
func startTracked(start func() (int, error)) (forget func(pid int), err error) {
	_, err = start()
	return nil, err
}
