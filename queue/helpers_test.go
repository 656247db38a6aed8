package queue

import (
	"context"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/sqlstore"
	"github.com/nsfd/nsfd/registry"
	_ "github.com/nsfd/nsfd/registry/postgres" // the engines the spool runs on
	_ "github.com/nsfd/nsfd/registry/sqlite"
)

var ctx = context.Background()

// env is what a case of the spool's table runs against.
type env struct {
	typ, dsn string
	r        registry.Registry
}

// open opens a registry for tb and closes it when tb ends.
func open(tb testing.TB, typ, dsn string) registry.Registry {
	tb.Helper()
	r, err := registry.Open(context.Background(), typ, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Error(err)
		}
	})
	return r
}

// storeOf is the SQL store under a registry.
func storeOf(tb testing.TB, r registry.Registry) *sqlstore.Store {
	tb.Helper()
	s, ok := sqlstore.Of(r)
	if !ok {
		tb.Fatalf("%T is not a SQL store", r)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
