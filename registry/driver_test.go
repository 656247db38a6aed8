package registry

import (
	"context"
	"strings"
	"testing"
)

// withDrivers runs the test with only the given drivers registered.
func withDrivers(t *testing.T, m map[string]Driver) {
	t.Helper()
	drivers.Lock()
	saved := drivers.m
	drivers.m = m
	drivers.Unlock()
	t.Cleanup(func() {
		drivers.Lock()
		drivers.m = saved
		drivers.Unlock()
	})
}

// TestOpenWithoutDriver: a program that links no driver for a type says
// which import would add it.
func TestOpenWithoutDriver(t *testing.T) {
	withDrivers(t, nil)
	for typ, imp := range map[string]string{
		TypeSQLite:   `import _ "github.com/nsfd/nsfd/registry/sqlite"`,
		TypePostgres: `import _ "github.com/nsfd/nsfd/registry/postgres"`,
	} {
		_, err := Open(context.Background(), typ, "x")
		if err == nil || !strings.Contains(err.Error(), imp) || !strings.Contains(err.Error(), "not linked") {
			t.Errorf("open %s without its driver: %v; want it to say %s", typ, err, imp)
		}
	}
}

type fakeDriver struct{ opened *string }

func (f fakeDriver) Open(_ context.Context, dsn string) (Registry, error) {
	*f.opened = dsn
	return nil, nil
}

func TestRegisterAndOpen(t *testing.T) {
	withDrivers(t, nil)
	var opened string
	Register("fake", fakeDriver{&opened})
	if _, err := Open(context.Background(), "fake", "dsn-1"); err != nil || opened != "dsn-1" {
		t.Fatalf("open through the fake driver: %v, opened %q", err, opened)
	}
	if got := Drivers(); len(got) != 1 || got[0] != "fake" {
		t.Fatalf("Drivers() = %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a type twice did not panic")
		}
	}()
	Register("fake", fakeDriver{&opened})
}
