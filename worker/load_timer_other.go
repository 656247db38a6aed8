//go:build !linux

package prefork

// newLoadTimer returns a runtime timer.
func newLoadTimer(f func()) loadTimer { return newRuntimeTimer(f) }
