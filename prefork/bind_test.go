package prefork

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// bindLoopbackTCP binds network ("tcp", "tcp4" or "tcp6") on a free
// loopback port for the test, closed when it ends; without an IPv6
// loopback, tcp6 skips.
func bindLoopbackTCP(t *testing.T, network string) *Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	l, err := Bind(context.Background(), ListenSpec{Network: network, Address: addr, Backlog: 16, UID: -1, GID: -1})
	if err != nil {
		if network == "tcp6" && strings.Contains(err.Error(), "cannot assign") {
			t.Skip("no IPv6 loopback")
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestBindTCPResolvesPortZero(t *testing.T) {
	for _, network := range []string{"tcp", "tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			l := bindLoopbackTCP(t, network)
			if port := l.Addr.(*net.TCPAddr).Port; port == 0 {
				t.Fatalf("port 0 not resolved: %v", l.Addr)
			}
			// The master's copy is blocking, as systemd hands sockets over.
			fl, err := unix.FcntlInt(l.File().Fd(), unix.F_GETFL, 0)
			if err != nil || fl&unix.O_NONBLOCK != 0 {
				t.Errorf("flags %#x, %v: want blocking", fl, err)
			}
			c, err := net.Dial("tcp", l.Addr.String())
			if err != nil {
				t.Fatalf("connect to the bound socket: %v", err)
			}
			c.Close()
		})
	}
}

func TestBindUDP(t *testing.T) {
	l, err := Bind(context.Background(), ListenSpec{Network: "udp", Address: "127.0.0.1:0", UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr.(*net.UDPAddr).Port == 0 || l.Proto() != "udp" {
		t.Fatalf("bad udp listener %v", l)
	}
}

func TestBindUnixSocketFile(t *testing.T) {
	dir, err := os.MkdirTemp("", "nsfdbind")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sub", "d.sock")
	ctx := context.Background()
	spec := ListenSpec{Network: "unix", Address: path, Mode: 0o640, UID: -1, GID: -1}

	l, err := Bind(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o640 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket file %v, %v: want a socket with mode 0640", fi.Mode(), err)
	}
	// A live socket is not taken over.
	if _, err := Bind(ctx, spec); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second bind on a live socket: %v, want ErrAddrInUse", err)
	}
	// Close removes the file.
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}

	// A stale socket (its process gone) is removed and bound again.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err = Bind(ctx, spec)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()

	// A regular file in the way is never removed.
	os.WriteFile(path, []byte("precious"), 0o600)
	if _, err := Bind(ctx, spec); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("bind over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatal("regular file was touched")
	}
}

func TestBindUnixgram(t *testing.T) {
	dir, err := os.MkdirTemp("", "nsfdbind")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "g.sock")
	l, err := Bind(context.Background(), ListenSpec{Network: "unixgram", Address: path, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Bind(context.Background(), ListenSpec{Network: "unixgram", Address: path, UID: -1, GID: -1}); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second bind on a live datagram socket: %v", err)
	}
}
