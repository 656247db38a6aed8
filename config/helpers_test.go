package config

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"testing"
)

// asRoot is a master running as root.
var asRoot = RunAs{UID: 0, GID: 0, Name: "root"}

// needRoot skips a test whose files must pass the checks of a master
// running as root (owned by root) or that sets user =.
func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: a master that is not root refuses user = and cannot be impersonated by files of another owner")
	}
}

// fakeUsers replaces the user database for the test: nobody (65534), app
// (1000, group app) and the groups adm (4), www-data (33), video (44).
func fakeUsers(tb testing.TB) {
	tb.Helper()
	users := map[string][2]int{"nobody": {65534, 65534}, "app": {1000, 1000}}
	groups := map[string]int{"nobody": 65534, "nogroup": 65534, "app": 1000, "adm": 4, "www-data": 33, "video": 44}
	oldU, oldG := lookupUser, lookupGroup
	lookupUser = func(name string) (*user.User, error) {
		for n, ids := range users {
			if n == name || fmt.Sprint(ids[0]) == name {
				return &user.User{Username: n, Uid: fmt.Sprint(ids[0]), Gid: fmt.Sprint(ids[1])}, nil
			}
		}
		return nil, fmt.Errorf("no user %q", name)
	}
	lookupGroup = func(name string) (int, error) {
		if gid, ok := groups[name]; ok {
			return gid, nil
		}
		var n int
		if _, err := fmt.Sscan(name, &n); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("no group %q", name)
	}
	tb.Cleanup(func() { lookupUser, lookupGroup = oldU, oldG })
}

// openTempDir is a t.TempDir() that other users may search, with its
// parent: a worker running as nobody can reach what is inside.
func openTempDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
