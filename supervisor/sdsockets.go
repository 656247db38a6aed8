package supervisor

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nsfd/nsfd/prefork"
)

// Sockets from systemd. A socket unit (init/nsfd.socket) can hand nsfd
// itself listening sockets (LISTEN_FDS, Options.Inherited): a daemon whose
// TCP or UDP port is one of them gets a copy of that socket instead of
// binding its own, so the kernel holds the listener while nsfd restarts,
// and connections wait in its backlog instead of being refused. The master
// keeps its inherited copy for as long as it runs (a daemon stopped and
// started takes it again) and hands it over across an upgrade.

// sdSocket is one socket inherited from systemd.
type sdSocket struct {
	fd   int
	typ  int // SOCK_STREAM or SOCK_DGRAM
	addr net.Addr
}

// adoptSystemd records the sockets of files (their fds), set close-on-exec.
func (s *Supervisor) adoptSystemd(fds []int) {
	for _, fd := range fds {
		unix.CloseOnExec(fd)
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			s.log.Warn("inherited fd is not a socket; ignoring it", "fd", fd, "error", err)
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		var addr net.Addr
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			addr = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
		case *unix.SockaddrInet6:
			addr = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
		default:
			s.log.Warn("inherited socket is not TCP or UDP; ignoring it", "fd", fd)
			continue
		}
		s.sdSockets = append(s.sdSockets, sdSocket{fd: fd, typ: typ, addr: addr})
		s.log.Info("socket from systemd", "fd", fd, "addr", addr.String(), "type", map[int]string{unix.SOCK_STREAM: "stream", unix.SOCK_DGRAM: "datagram"}[typ])
	}
}

// bind binds spec, or, if systemd handed nsfd a socket on that address,
// adopts a copy of it.
func (s *Supervisor) bind(ctx context.Context, spec prefork.ListenSpec) (*prefork.Listener, error) {
	if sd := s.systemdSocket(spec); sd != nil {
		fd, err := unix.FcntlInt(uintptr(sd.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("socket from systemd for %s: %w", spec.Address, err)
		}
		l, err := prefork.AdoptListener(ctx, spec, fd)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		if spec.Backlog > 0 && sd.typ == unix.SOCK_STREAM {
			_ = unix.Listen(fd, spec.Backlog)
		}
		return l, nil
	}
	return prefork.Bind(ctx, spec)
}

// systemdSocket returns the inherited socket spec's address matches, if
// any: same type and port, and the same IP (or both unspecified).
func (s *Supervisor) systemdSocket(spec prefork.ListenSpec) *sdSocket {
	if len(s.sdSockets) == 0 {
		return nil
	}
	typ := unix.SOCK_STREAM
	switch spec.Proto() {
	case "udp":
		typ = unix.SOCK_DGRAM
	case "tcp":
	default:
		return nil
	}
	host, portStr, err := net.SplitHostPort(spec.Address)
	if err != nil {
		return nil
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port == 0 {
		return nil
	}
	ip := net.ParseIP(host)
	if host == "" {
		ip = net.IPv4zero
	}
	for i := range s.sdSockets {
		sd := &s.sdSockets[i]
		a := sd.addr.(*net.TCPAddr)
		if sd.typ != typ || a.Port != port {
			continue
		}
		if (ip != nil && ip.Equal(a.IP)) || (ip != nil && ip.IsUnspecified() && a.IP.IsUnspecified()) {
			return sd
		}
	}
	return nil
}

// systemdFDs returns the fds of the sockets from systemd, for a hand-over.
func (s *Supervisor) systemdFDs() []int {
	fds := make([]int, len(s.sdSockets))
	for i, sd := range s.sdSockets {
		fds[i] = sd.fd
	}
	return fds
}

// handedOverSystemd returns the sockets from systemd an upgrade handed
// over, if any.
func handedOverSystemd(h *Handover) []int {
	if h == nil {
		return nil
	}
	return h.SystemdFDs
}
