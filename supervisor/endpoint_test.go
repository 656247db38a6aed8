//go:build linux

package supervisor

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
	"golang.org/x/sys/unix"
)

type nopUI struct{}

func (nopUI) Handler(api http.Handler, remote bool) http.Handler { return api }

// handedEndpoint binds addr and returns its address and a duplicate of its
// fd, as a hand-over names it.
func handedEndpoint(t *testing.T, addr string) (string, int) {
	t.Helper()
	l, err := prefork.Bind(context.Background(), prefork.ListenSpec{Network: "tcp", Address: addr, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fd, err := unix.Dup(l.FD())
	if err != nil {
		t.Fatal(err)
	}
	return l.Addr.String(), fd
}

// isOpen reports whether fd is an open descriptor.
func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return !errors.Is(err, unix.EBADF)
}

// TestAdoptEndpoints checks which handed-over socket each of metrics_addr
// and http_addr takes: its own at the same address (two 127.0.0.1:0 are
// two sockets), the other's when the two swapped fixed addresses, none
// when its address changed or was removed, whose sockets are closed.
func TestAdoptEndpoints(t *testing.T) {
	a, fdA := handedEndpoint(t, "127.0.0.1:0")
	b, fdB := handedEndpoint(t, "127.0.0.1:0")
	zm, fdZM := handedEndpoint(t, "127.0.0.1:0")
	zh, fdZH := handedEndpoint(t, "127.0.0.1:0")
	_, fdGone := handedEndpoint(t, "127.0.0.1:0")
	for _, c := range []struct {
		name                  string
		extra                 map[string]string
		metrics, http         string // nsfd.ini now
		wantMetrics, wantHTTP string // the bound address each adopts; "": none
		closed                []int
	}{
		{
			name:    "port 0 twice",
			extra:   map[string]string{"metrics_fd": strconv.Itoa(fdZM), "metrics_addr": "127.0.0.1:0", "http_fd": strconv.Itoa(fdZH), "http_addr": "127.0.0.1:0"},
			metrics: "127.0.0.1:0", http: "127.0.0.1:0", wantMetrics: zm, wantHTTP: zh,
		},
		{
			name:    "swapped",
			extra:   map[string]string{"metrics_fd": strconv.Itoa(fdA), "metrics_addr": a, "http_fd": strconv.Itoa(fdB), "http_addr": b},
			metrics: b, http: a, wantMetrics: b, wantHTTP: a,
		},
		{
			name:    "moved and removed",
			extra:   map[string]string{"metrics_fd": strconv.Itoa(fdGone), "metrics_addr": "127.0.0.1:0", "http_fd": "-1"},
			metrics: "127.0.0.2:0", http: "", closed: []int{fdGone},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Supervisor{
				opts:   Options{Handover: &Handover{Extra: c.extra}, UI: nopUI{}},
				master: &config.Master{MetricsAddr: c.metrics, HTTPAddr: c.http},
				log:    hclog.NewNullLogger(),
			}
			got := s.adoptEndpoints(context.Background())
			for key, want := range map[string]string{"metrics": c.wantMetrics, "http": c.wantHTTP} {
				l := got[key]
				switch {
				case want == "" && l != nil:
					t.Errorf("%s adopted %v, want none", key, l.Addr)
				case want != "" && l == nil:
					t.Errorf("%s adopted none, want the socket at %s", key, want)
				case l != nil && l.Addr.String() != want:
					t.Errorf("%s adopted the socket at %v, want %s", key, l.Addr, want)
				}
			}
			for _, fd := range c.closed {
				if isOpen(fd) {
					t.Errorf("fd %d still open", fd)
				}
			}
			closeAdopted(got)
		})
	}
}
