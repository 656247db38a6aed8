package prefork

import (
	"fmt"
	"os"
	"testing"
)

// testHelpers are programs the test binary impersonates when started with
// NSFD_TEST_HELPER=name; test files register theirs in init.
var testHelpers = map[string]func(){}

// testProcs is the process backend of the pools the tests start: Pump,
// or Portable with NSFD_PROCESS_BACKEND=portable.
var testProcs Backend

// testBackend is testProcs's name: BackendPump or BackendPortable.
var testBackend string

func TestMain(m *testing.M) {
	RunKeeperIfAsked()
	if len(os.Args) > 1 && os.Args[1] == ShimArg {
		err := RunShim(os.Args[2:])
		fmt.Fprintln(os.Stderr, "nsfd exec:", err)
		os.Exit(127)
	}
	if name := os.Getenv("NSFD_TEST_HELPER"); name != "" {
		h, ok := testHelpers[name]
		if !ok {
			fmt.Fprintln(os.Stderr, "unknown test helper", name)
			os.Exit(2)
		}
		h()
		os.Exit(0)
	}
	if os.Getenv("NSFD_TEST_NOTIFY") == "per-worker" { // as on macOS and FreeBSD
		listenNotifyFunc = func(path string, uid, gid int) (notifyEndpoints, error) {
			return listenWorkerSockets(path, uid, gid)
		}
	}
	// One backend for every pool of the tests, as a master has.
	var err error
	if testProcs, testBackend, err = OpenBackend(""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testProcs.Close()
	os.Exit(code)
}
