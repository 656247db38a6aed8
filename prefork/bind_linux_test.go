package prefork

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBindTCPIsPlainTCP checks that a TCP listener is IPPROTO_TCP, as
// systemd binds it, not the Multipath TCP Go picks by default since 1.24,
// and that it behaves as such for a worker: SO_RCVTIMEO bounds a blocking
// accept (an MPTCP listener ignores it, and a worker that relies on it to
// notice a signal hangs in accept).
func TestBindTCPIsPlainTCP(t *testing.T) {
	for _, network := range []string{"tcp", "tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			l := bindLoopbackTCP(t, network)
			fd := int(l.File().Fd())
			proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
			if err != nil {
				t.Fatal(err)
			}
			if proto != unix.IPPROTO_TCP {
				t.Fatalf("SO_PROTOCOL %d, want IPPROTO_TCP (%d)", proto, unix.IPPROTO_TCP)
			}

			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50_000}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				nfd, _, err := unix.Accept(fd)
				if err == nil {
					unix.Close(nfd)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, unix.EAGAIN) {
					t.Fatalf("accept with a 50ms SO_RCVTIMEO and no client: %v, want EAGAIN", err)
				}
			case <-time.After(10 * time.Second):
				unix.Shutdown(fd, unix.SHUT_RD) // wakes the accept
				<-done
				t.Fatal("accept ignored SO_RCVTIMEO")
			}
		})
	}
}

// A UNIX socket file is born readable and writable by the master alone,
// whatever the umask, and a stream socket refuses connections until Bind
// has set its file's mode and owner: a caller of control_group, or another
// user sending a datagram, never meets the umask's mode (a test saw 0755
// where 0660 was asked, right after the master started).
func TestBindUnixListensOnlyWithItsMode(t *testing.T) {
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, network := range []string{"unix", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.sock")
			f, _, err := bindUnix(network, path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("socket file right after bind, umask 0: %v, %v; want mode 0600", fi, err)
			}
			if network == "unix" {
				if c, err := net.Dial("unix", path); err == nil || !errors.Is(err, unix.ECONNREFUSED) {
					if c != nil {
						c.Close()
					}
					t.Fatalf("dial of a socket bound but not yet set: %v, want connection refused", err)
				}
			}
			f.Close()
			os.Remove(path)

			l, err := Bind(context.Background(), ListenSpec{Network: network, Address: path, Mode: 0o620, UID: -1, GID: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o620 {
				t.Fatalf("socket file: %v, %v; want mode 0620", fi, err)
			}
			c, err := net.Dial(network, path)
			if err != nil {
				t.Fatalf("dial once bound: %v", err)
			}
			defer c.Close()
			if network == "unixgram" {
				if _, err := c.Write([]byte("hello")); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 16)
				n, err := unix.Read(int(l.file.Fd()), buf)
				if err != nil || string(buf[:n]) != "hello" {
					t.Fatalf("datagram read from the listener: %q, %v", buf[:n], err)
				}
			}
		})
	}
}
