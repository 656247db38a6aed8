package prefork

import (
	"errors"
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
