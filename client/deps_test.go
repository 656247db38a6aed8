package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoSQLiteLinked: a client program, and a framework daemon such as kv,
// link no SQLite code (they resolve through a Resolver: the master's
// resolver socket, or a registry whose driver they import themselves), so
// they build with CGO_ENABLED=0. `make portable` builds them so.
func TestNoSQLiteLinked(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/nsfd/nsfd/client", "github.com/nsfd/nsfd/examples/kv").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for pkg := range strings.FieldsSeq(string(out)) {
		if strings.Contains(strings.ToLower(pkg), "sqlite") {
			t.Errorf("client or kv links %s", pkg)
		}
	}
}
