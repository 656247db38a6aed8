package worker

import (
	"fmt"
	"os"
	"testing"
)

// testHelpers are programs the test binary impersonates when started with
// NSFD_TEST_HELPER=name: real workers, with real sockets as fds 3..; test
// files register theirs in init.
var testHelpers = map[string]func(){}

func TestMain(m *testing.M) {
	if name := os.Getenv("NSFD_TEST_HELPER"); name != "" {
		h, ok := testHelpers[name]
		if !ok {
			fmt.Fprintln(os.Stderr, "unknown test helper", name)
			os.Exit(2)
		}
		h()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
