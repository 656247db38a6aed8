//go:build unix

package prefork

import (
	"fmt"
	"os"
	"strings"
)

// Backend is a process backend as a master holds it: the Procs it hands to
// its pools, closed once they have all stopped.
type Backend interface {
	Procs
	// Close closes what is left of every process's watch and stops the
	// backend.
	Close()
}

// The names of the process backends, as [nsfd] process_backend and
// EnvProcessBackend give them.
const (
	// BackendPump is Pump, Linux only and its default.
	BackendPump = "pump"
	// BackendPortable is Portable, on every unix; the only one on macOS
	// and FreeBSD.
	BackendPortable = "portable"
)

// EnvProcessBackend in the master's environment names its process backend,
// whatever nsfd.ini says: the end-to-end tests run a master on each.
const EnvProcessBackend = "NSFD_PROCESS_BACKEND"

// OpenBackend opens the process backend named by EnvProcessBackend if set,
// else by name ([nsfd] process_backend; empty: the system's default). It
// returns the name of the backend opened.
func OpenBackend(name string) (Backend, string, error) {
	if v := os.Getenv(EnvProcessBackend); v != "" {
		name = strings.ToLower(v)
		if name != BackendPump && name != BackendPortable {
			return nil, "", fmt.Errorf("%s=%q: unknown process backend (want %s or %s)", EnvProcessBackend, v, BackendPump, BackendPortable)
		}
	}
	return openBackend(name)
}

func openPortableBackend() (Backend, string, error) {
	b, err := OpenPortable()
	if err != nil {
		return nil, "", err
	}
	return b, BackendPortable, nil
}
