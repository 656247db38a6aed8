//go:build !linux

package prefork

// startTracked runs start, a fork that returns the child's pid. There is no
// orphan reaper off Linux to keep the child from.
func startTracked(start func() (int, error)) error {
	_, err := start()
	return err
}
