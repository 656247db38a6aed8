package prefork

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ListenSpec says what socket to bind. Network is a Go network name: "tcp",
// "tcp4", "tcp6", "udp", "udp4", "udp6", "unix" (stream) or "unixgram".
type ListenSpec struct {
	Network string
	Address string      // host:port (port 0: any free port) or a socket path
	Backlog int         // listen(2) backlog for stream sockets; 0: the kernel's default
	Mode    fs.FileMode // mode of a UNIX socket file; 0: 0660
	UID     int         // owner of a UNIX socket file; -1: unchanged
	GID     int         // group of a UNIX socket file; -1: unchanged
}

// Listener is a bound socket held by the master for a daemon's whole life and
// handed to every worker as an inherited fd.
type Listener struct {
	Spec  ListenSpec // owned by whoever binds and adjusts it; pools read only what Bind fixed
	Addr  net.Addr   // the real bound address: port 0 resolved
	file  *os.File
	proto string
	sock  sockFile // a UNIX socket's file, as bound: only that file is changed or removed
}

// File returns the socket's fd as a file, for exec.Cmd.ExtraFiles.
func (l *Listener) File() *os.File { return l.file }

// Proto returns "tcp", "udp", "unix" or "unixgram": the protocol without address family.
func (l *Listener) Proto() string {
	if l.proto != "" {
		return l.proto
	}
	return protoOf(l.Spec.Network)
}

func protoOf(network string) string {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return "tcp"
	case "udp", "udp4", "udp6":
		return "udp"
	}
	return network
}

// String renders the listener as "proto address", e.g. "tcp 127.0.0.1:41234".
func (l *Listener) String() string { return l.Proto() + " " + l.Addr.String() }

// IsUnix reports whether the listener is a UNIX socket with a file on disk.
func (l *Listener) IsUnix() bool {
	return l.Spec.Network == "unix" || l.Spec.Network == "unixgram"
}

// Close closes the master's fd and, for a UNIX socket, removes its file
// if it is still the one bound (same device and inode): a file put in its
// place since is left alone, and the error wraps ErrReplaced. Workers that
// still hold the fd keep serving on it until they exit.
func (l *Listener) Close() error {
	if l == nil || l.file == nil {
		return nil
	}
	err := l.file.Close()
	if l.IsUnix() && l.sock.path != "" {
		if rerr := l.sock.remove(); rerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", l, rerr)
		}
	}
	l.file = nil
	return err
}

// ErrAddrInUse is wrapped by Bind's error when a live process already listens
// on a UNIX socket path.
var ErrAddrInUse = errors.New("address in use")

// Bind binds a listener. A stale UNIX socket file (nothing accepts on it) is
// removed first; a live one, or a path that is not a socket, is an error.
// The returned fd is in blocking mode, as systemd hands sockets over.
func Bind(ctx context.Context, spec ListenSpec) (*Listener, error) {
	switch spec.Network {
	case "unix", "unixgram":
		if err := removeStaleSocket(ctx, spec.Address); err != nil {
			return nil, fmt.Errorf("bind %s %s: %w", spec.Network, spec.Address, err)
		}
		if err := os.MkdirAll(filepath.Dir(spec.Address), 0o755); err != nil {
			return nil, fmt.Errorf("bind %s %s: %w", spec.Network, spec.Address, err)
		}
	}
	// Plain TCP, as systemd binds: Go listens with Multipath TCP by default
	// since 1.24, and an MPTCP listener ignores SO_RCVTIMEO on accept and
	// hands workers sockets whose TCP options and protocol differ.
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	var (
		file *os.File
		addr net.Addr
		err  error
	)
	switch spec.Network {
	case "unix", "unixgram":
		// Born owner-only, and a stream socket not yet listening: nobody
		// connects or sends before the file has its mode and owner (below).
		file, addr, err = bindUnix(spec.Network, spec.Address)
		if err != nil {
			return nil, fmt.Errorf("bind %s %s: %w", spec.Network, spec.Address, err)
		}
	case "tcp", "tcp4", "tcp6":
		var l net.Listener
		l, err = lc.Listen(ctx, spec.Network, spec.Address)
		if err != nil {
			return nil, fmt.Errorf("bind %s %s: %w", spec.Network, spec.Address, err)
		}
		addr = l.Addr()
		file, err = l.(*net.TCPListener).File()
		l.Close()
	case "udp", "udp4", "udp6":
		var pc net.PacketConn
		pc, err = lc.ListenPacket(ctx, spec.Network, spec.Address)
		if err != nil {
			return nil, fmt.Errorf("bind %s %s: %w", spec.Network, spec.Address, err)
		}
		addr = pc.LocalAddr()
		file, err = pc.(*net.UDPConn).File()
		pc.Close()
	default:
		return nil, fmt.Errorf("bind %q: unknown network", spec.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("bind %s %s: %w", spec.Network, spec.Address, err)
	}
	// Hand workers a blocking socket, as systemd does, and keep a file whose Fd
	// never touches the flags again: Fd on the pollable file from File() sets
	// blocking mode on the shared socket, and os/exec calls Fd on every spawn,
	// which would flip workers that made it non-blocking.
	file, err = plainFile(file)
	if err != nil {
		return nil, fmt.Errorf("bind %s %s: %w", spec.Network, spec.Address, err)
	}
	l := &Listener{Spec: spec, Addr: addr, file: file, proto: protoOf(spec.Network)}
	if l.IsUnix() {
		if l.sock, err = statSocketFile(spec.Address); err != nil {
			l.Close()
			return nil, fmt.Errorf("bind %s: %w", l, err)
		}
	}
	if l.IsUnix() {
		if err := l.sock.setMode(socketMode(spec), spec.UID, spec.GID); err != nil {
			l.Close()
			return nil, fmt.Errorf("bind %s: %w", l, err)
		}
	}
	fd := int(file.Fd())
	if backlog := spec.Backlog; spec.Network == "unix" || (backlog > 0 && spec.Proto() == "tcp") {
		// Go listens with the kernel's somaxconn, and a UNIX stream socket
		// listens only now; listen(2) sets the daemon's backlog (a larger
		// one than somaxconn is cut to it).
		if backlog <= 0 {
			backlog = maxBacklog
		}
		if err := syscall.Listen(fd, backlog); err != nil {
			l.Close()
			return nil, fmt.Errorf("bind %s: listen backlog %d: %w", l, backlog, err)
		}
	}
	return l, nil
}

// maxBacklog is the listen backlog of a UNIX stream socket whose spec sets
// none: the kernel cuts it to its somaxconn, as Go's own listeners ask.
const maxBacklog = 1<<16 - 1

// socketMode is the mode of a UNIX socket file: spec.Mode, default 0660.
func socketMode(spec ListenSpec) fs.FileMode {
	if spec.Mode == 0 {
		return 0o660
	}
	return spec.Mode
}

// Proto returns the spec's protocol without address family.
func (s ListenSpec) Proto() string { return protoOf(s.Network) }

// removeStaleSocket removes path if it is a UNIX socket nobody accepts on.
func removeStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	d := net.Dialer{Timeout: time.Second}
	for _, network := range []string{"unix", "unixgram"} {
		c, err := d.DialContext(ctx, network, path)
		if err == nil {
			c.Close()
			return fmt.Errorf("%s: %w: another process listens on it", path, ErrAddrInUse)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EPROTOTYPE) {
			return fmt.Errorf("probe %s: %w", path, err)
		}
	}
	return os.Remove(path)
}

// plainFile returns a blocking, non-pollable copy of f's fd and closes f.
func plainFile(f *os.File) (*os.File, error) {
	defer f.Close()
	fd := f.Fd() // sets blocking mode
	nfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// Adjust applies a changed spec to a listener kept across a reload: the
// mode and owner of a UNIX socket file. Network and address must match.
func (l *Listener) Adjust(spec ListenSpec) error {
	if spec.Network != l.Spec.Network || spec.Address != l.Spec.Address {
		return fmt.Errorf("adjust %s: spec is for %s %s", l, spec.Network, spec.Address)
	}
	if l.IsUnix() {
		if err := l.sock.setMode(socketMode(spec), spec.UID, spec.GID); err != nil {
			return fmt.Errorf("adjust %s: %w", l, err)
		}
	}
	if spec.Backlog > 0 && spec.Backlog != l.Spec.Backlog && (spec.Network == "unix" || spec.Proto() == "tcp") {
		if err := syscall.Listen(int(l.file.Fd()), spec.Backlog); err != nil {
			return fmt.Errorf("adjust %s: listen backlog %d: %w", l, spec.Backlog, err)
		}
	}
	l.Spec = spec
	return nil
}
