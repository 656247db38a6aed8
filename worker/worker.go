package worker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoListeners is returned by Serve when the worker inherited nothing it
// can serve: LISTEN_FDS is unset, zero, or meant for another process.
var ErrNoListeners = errors.New("no inherited listeners (LISTEN_FDS)")

// maxListenFDs bounds LISTEN_FDS, so a garbage value cannot make Files wrap
// thousands of fds.
const maxListenFDs = 4096

// inherited caches what Files found: the environment is read, and unset, once.
var inherited struct {
	once  sync.Once
	files []*os.File
	err   error
}

// Files returns the listeners the worker inherited, as sd_listen_fds(3) does:
// fds 3, 4, … up to LISTEN_FDS, named from LISTEN_FDNAMES (a missing name
// becomes "LISTEN_FD_<fd>"), each set close-on-exec. When LISTEN_PID is set
// and is not this process's pid the fds were meant for another process and
// Files returns none; an unset LISTEN_PID is accepted. No inherited fds is
// not an error: the result is empty.
//
// The first call unsets LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, so
// children of the worker do not take the fds for theirs; later calls return
// the same files. The sockets are shared with the master and every other
// worker: closing a returned file closes only this process's copy.
func Files() ([]*os.File, error) {
	inherited.once.Do(func() {
		inherited.files, inherited.err = inheritFiles()
	})
	return slices.Clone(inherited.files), inherited.err
}

func inheritFiles() ([]*os.File, error) {
	n, names, err := parseListenEnv(os.Getenv(EnvListenFDs), os.Getenv(EnvListenPID),
		os.Getenv(EnvListenFDNames), os.Getpid())
	for _, k := range []string{EnvListenFDs, EnvListenPID, EnvListenFDNames} {
		os.Unsetenv(k)
	}
	if err != nil || n == 0 {
		return nil, err
	}
	files := make([]*os.File, 0, n)
	for i := range n {
		fd := ListenFDsStart + i
		if err := inheritCloexec(fd); err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("inherited fd %d: %w", fd, err)
		}
		files = append(files, os.NewFile(uintptr(fd), names[i]))
	}
	return files, nil
}

// parseListenEnv interprets LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES for the
// process pid: the number of inherited fds and one name for each.
func parseListenEnv(fds, listenPID, fdNames string, pid int) (int, []string, error) {
	if listenPID != "" {
		p, err := strconv.Atoi(listenPID)
		if err != nil || p <= 0 {
			return 0, nil, fmt.Errorf("%s=%q: not a pid", EnvListenPID, listenPID)
		}
		if p != pid {
			return 0, nil, nil
		}
	}
	if fds == "" {
		return 0, nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > maxListenFDs {
		return 0, nil, fmt.Errorf("%s=%q: not a number of fds", EnvListenFDs, fds)
	}
	var given []string
	if fdNames != "" {
		given = strings.Split(fdNames, ":")
	}
	names := make([]string, n)
	for i := range names {
		if i < len(given) && given[i] != "" {
			names[i] = given[i]
		} else {
			names[i] = listenFDNamePrefix + strconv.Itoa(ListenFDsStart+i)
		}
	}
	return n, names, nil
}

// Listeners returns a net.Listener for every inherited stream socket that
// listens (TCP, UNIX stream or seqpacket), in fd order; datagram sockets are
// left to PacketConns, anything else is skipped. Each call makes new
// listeners on duplicates of the inherited fds: closing one stops this
// process accepting on it and leaves the socket open for the other workers.
func Listeners() ([]net.Listener, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	var ls []net.Listener
	for _, f := range files {
		kind, err := inheritedKind(f)
		if err != nil {
			closeWorkerSockets(ls)
			return nil, fmt.Errorf("listener %s: %w", f.Name(), err)
		}
		if kind != fdStreamListener {
			continue
		}
		l, err := net.FileListener(f)
		if err != nil {
			closeWorkerSockets(ls)
			return nil, fmt.Errorf("listener %s: %w", f.Name(), err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// PacketConns returns a net.PacketConn for every inherited datagram socket
// (UDP, UNIX datagram), in fd order. As with Listeners, each call makes new
// conns on duplicates of the inherited fds.
func PacketConns() ([]net.PacketConn, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	var pcs []net.PacketConn
	for _, f := range files {
		kind, err := inheritedKind(f)
		if err != nil {
			closeWorkerSockets(pcs)
			return nil, fmt.Errorf("packet conn %s: %w", f.Name(), err)
		}
		if kind != fdDatagram {
			continue
		}
		pc, err := net.FilePacketConn(f)
		if err != nil {
			closeWorkerSockets(pcs)
			return nil, fmt.Errorf("packet conn %s: %w", f.Name(), err)
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}

// fdKind is what an inherited fd is good for.
type fdKind int

const (
	fdOther          fdKind = iota // not a socket, or a socket Serve cannot use
	fdStreamListener               // a listening stream or seqpacket socket
	fdDatagram                     // a datagram socket
)

func closeWorkerSockets[C interface{ Close() error }](cs []C) {
	for _, c := range cs {
		c.Close()
	}
}

// WatchdogInterval returns how often the master wants WATCHDOG=1 at the
// latest: WATCHDOG_USEC, when it is set and WATCHDOG_PID is unset or this
// process's pid. It returns 0 when the watchdog is off for this process, and
// an error when a variable is malformed. Send WATCHDOG=1 at half the
// interval; Serve does so on its own.
func WatchdogInterval() (time.Duration, error) {
	return parseWatchdogEnv(os.Getenv(EnvWatchdogUSec), os.Getenv(EnvWatchdogPID), os.Getpid())
}

func parseWatchdogEnv(usec, wpid string, pid int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if wpid != "" {
		p, err := strconv.Atoi(wpid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("%s=%q: not a pid", EnvWatchdogPID, wpid)
		}
		if p != pid {
			return 0, nil
		}
	}
	us, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || us < 0 || us > int64(time.Duration(1<<62)/time.Microsecond) {
		return 0, fmt.Errorf("%s=%q: not a number of microseconds", EnvWatchdogUSec, usec)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// MaxRequests returns the worker's own max_requests limit, which the master
// passes in NSFD_MAX_REQUESTS: the master replaces the worker once it has
// begun that many requests. It returns 0 when the variable is unset (no
// limit, or no master) and an error when it is malformed. Load reports the
// count at once when it reaches the limit.
func MaxRequests() (int, error) {
	return parseMaxRequestsEnv(os.Getenv(EnvMaxRequests))
}

func parseMaxRequestsEnv(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := ParseCount([]byte(s))
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a number of requests: %w", EnvMaxRequests, s, err)
	}
	return n, nil
}
