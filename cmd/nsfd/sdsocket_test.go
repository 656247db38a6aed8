//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A socket handed to nsfd by systemd (LISTEN_FDS) serves the daemon whose
// port it matches: nsfd can then stop and start again with the kernel
// holding the listener, and no connection is refused meanwhile.
func TestSystemdSocketRestartLosesNoRequest(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr := ln.Addr().String()
	inode, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))

	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.etc, "served.py"), []byte(servedWorker), 0o644); err != nil {
		t.Fatal(err)
	}
	e.write("up.ini", "command = python3 "+filepath.Join(e.etc, "served.py")+"\nport = "+addr+"\nmin_servers = 2\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n")
	bin := filepath.Join(binDir, "nsfd")
	m := e.startWith(bin, []*os.File{f})
	waitFor(t, "2 workers serving", 20*time.Second, func() bool { return tryEcho(addr, "warm") == nil && len(m.workers("python3")) == 2 })
	for _, pid := range m.workers("python3") {
		if got := sockets(pid)[3]; got != inode {
			t.Errorf("worker %d fd 3 is %q, not systemd's socket %q", pid, got, inode)
		}
	}
	if !strings.Contains(e.log(), "socket from systemd") {
		t.Error("the log does not mention the socket from systemd")
	}

	l := startUpLoadWithin(addr, 100000, 30*time.Second) // a request waits out the restart, slow under -race
	waitFor(t, "load running", 10*time.Second, func() bool { return l.ok.Load() > 20 })
	if code := m.stop(); code != 0 {
		t.Fatalf("master exit %d", code)
	}
	m2 := e.startWith(bin, []*os.File{f})
	mark := l.ok.Load()
	waitFor(t, "load served by the new master", 30*time.Second, func() bool { return l.ok.Load() > mark+50 })
	l.finish()
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across stop and start; first: %v", n, n+l.ok.Load(), l.firstErr.Load())
	}
	_ = m2
}
