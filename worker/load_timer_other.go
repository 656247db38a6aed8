//go:build !linux

package worker

// newLoadTimer returns a runtime timer.
func newLoadTimer(f func()) loadTimer { return newRuntimeTimer(f) }
