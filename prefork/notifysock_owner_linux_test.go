package prefork

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The notify socket belongs to the workers' user, mode 0600: only they (and
// root) may send to it. Another local user's datagrams never reach the
// queue, so they cannot crowd out the workers' WATCHDOG pings.
func TestNotifySocketOwnedByTheWorkersUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the socket to another user")
	}
	path := filepath.Join(t.TempDir(), "n.sock")
	ns, err := listenNotify(path, 65534, 65534)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.close()
	owner := func() (uint32, uint32, os.FileMode) {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid, fi.Mode().Perm()
	}
	if uid, gid, mode := owner(); uid != 65534 || gid != 65534 || mode != 0o600 {
		t.Errorf("socket %d:%d mode %04o, want 65534:65534 0600", uid, gid, mode)
	}
	// A reload that changes the user hands it over; -1 is the master's.
	if err := ns.own(-1, -1); err != nil {
		t.Fatal(err)
	}
	if uid, gid, mode := owner(); uid != 0 || gid != 0 || mode != 0o600 {
		t.Errorf("given back: %d:%d mode %04o", uid, gid, mode)
	}
}
