package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/logging"
)

// newTestMaster is what cmd/nsfd does before Run: it loads etc's nsfd.ini,
// prepares the run directory, opens the central log (closed when the test
// ends) and makes the Supervisor.
func newTestMaster(tb testing.TB, etc string, opts Options) *Supervisor {
	tb.Helper()
	m, err := config.LoadMaster(etc)
	if err != nil {
		tb.Fatal(err)
	}
	if err := PrepareRunDir(m); err != nil {
		tb.Fatal(err)
	}
	sink, err := logging.Open(logging.Config{Target: logging.TargetFile, File: m.Log.File, Level: m.Log.Level})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sink.Close(ctx)
	})
	s, err := New(m, sink, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
