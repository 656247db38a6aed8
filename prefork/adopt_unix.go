//go:build unix

package prefork

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// FD returns the listener's fd, for a hand-over across an exec; the
// listener keeps it.
func (l *Listener) FD() int { return int(l.file.Fd()) }

// AdoptListener makes a Listener of fd, a socket bound for spec that this
// process inherited (from the master it replaced, or from systemd).
func AdoptListener(ctx context.Context, spec ListenSpec, fd int) (*Listener, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	// Not net.FileListener: its duplicate would make the socket, which
	// the workers share, non-blocking under them.
	addr, err := sockAddr(fd, spec.Network)
	if err != nil {
		return nil, fmt.Errorf("adopt %s %s: %w", spec.Network, spec.Address, err)
	}
	file := os.NewFile(uintptr(fd), spec.Network+" "+spec.Address)
	l := &Listener{Spec: spec, Addr: addr, file: file, proto: protoOf(spec.Network)}
	if l.IsUnix() {
		var err error
		if l.sock, err = statSocketFile(spec.Address); err != nil {
			return nil, fmt.Errorf("adopt %s: %w", l, err)
		}
	}
	return l, nil
}

// sockAddr is the address fd is bound to, as a net.Addr of network.
func sockAddr(fd int, network string) (net.Addr, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	var (
		ip   net.IP
		port int
		zone string
	)
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ip, port = net.IP(a.Addr[:]), a.Port
	case *unix.SockaddrInet6:
		ip, port = net.IP(a.Addr[:]), a.Port
		if a.ZoneId != 0 {
			zone = strconv.Itoa(int(a.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: network}, nil
	default:
		return nil, fmt.Errorf("fd %d: unexpected socket address %T", fd, sa)
	}
	if protoOf(network) == "udp" {
		return &net.UDPAddr{IP: ip, Port: port, Zone: zone}, nil
	}
	return &net.TCPAddr{IP: ip, Port: port, Zone: zone}, nil
}
