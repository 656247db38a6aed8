//go:build !linux

package prefork

// holdReaper: there is no orphan reaper off Linux.
func holdReaper() func() { return func() {} }
