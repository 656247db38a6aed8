//go:build unix && !linux

package prefork

// openBackend opens Portable, the only backend here: "pump" is Linux's.
func openBackend(string) (Backend, string, error) { return openPortableBackend() }
