package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsfd/nsfd/prefork"
)

// The hand-over format: what a master passes to the binary it re-executes
// in place (nsfd upgrade), as JSON in a memfd whose number is in
// HandoverEnv. Every fd it names is inherited (close-on-exec cleared just
// before the exec). The version says how to read it: a master refuses to
// upgrade to a binary whose preflight says it cannot read the version this
// one writes (HandoverVersion), and a binary reads every version from
// MinHandoverVersion up, older ones through a migration.
//
// Versions:
//
//	1: daemons with their listeners and pools; the control socket.
//	2: adds the resolver socket, the notify socket's path, the upgrade
//	   count and the version that wrote it; version 1's flat "pipes"
//	   (pid → [stdout, stderr]) moved into each worker.
//	   Later, without a new version (older binaries ignore it): each
//	   daemon's "scale" (`nsfd scale`, a scale to 0 included: its
//	   listeners with no pool) and "pending" (held, or waiting for its
//	   port: it starts by itself).
const (
	// HandoverVersion is the format this binary writes, and the newest it reads.
	HandoverVersion = 2
	// MinHandoverVersion is the oldest format this binary reads.
	MinHandoverVersion = 1
	// HandoverEnv carries the hand-over memfd's number to the new binary.
	HandoverEnv = "NSFD_HANDOVER_FD"
)

// Handover is a master's state as the binary it re-executes reads it.
type Handover struct {
	Version     int               `json:"version"`
	Written     time.Time         `json:"written"`
	FromVersion string            `json:"from_version"` // the nsfd version that wrote it
	Started     time.Time         `json:"started"`      // when the master first started
	Reloads     int               `json:"reloads"`
	Upgrades    int               `json:"upgrades"` // upgrades before this one
	ControlFD   int               `json:"control_fd"`
	ResolverFD  int               `json:"resolver_fd"` // -1: none
	Daemons     []DaemonHandover  `json:"daemons"`
	SystemdFDs  []int             `json:"systemd_fds,omitempty"` // sockets from systemd (LISTEN_FDS)
	Extra       map[string]string `json:"extra,omitempty"`       // room for additions that need no new version
}

// DaemonHandover is one daemon in a Handover.
type DaemonHandover struct {
	Name       string                `json:"name"`
	Hash       string                `json:"hash"` // of the config it runs
	Listeners  []ListenerHandover    `json:"listeners"`
	NotifyPath string                `json:"notify_path"`
	Pool       *prefork.PoolHandover `json:"pool"`            // nil: stopped (or scaled to 0)
	Scale      *DaemonScale          `json:"scale,omitempty"` // nil: the file's sizes
	// Pending: a daemon with no pool that is to start by itself: "held"
	// (waiting for what it requires) or "port" (waiting for its address).
	Pending string `json:"pending,omitempty"`
}

// ListenerHandover is one listener in a DaemonHandover.
type ListenerHandover struct {
	Spec prefork.ListenSpec `json:"spec"`
	FD   int                `json:"fd"`
}

// fds returns every fd h names, for close-on-exec.
func (h *Handover) fds() []int {
	fds := append([]int{h.ControlFD}, h.SystemdFDs...)
	if h.ResolverFD >= 0 {
		fds = append(fds, h.ResolverFD)
	}
	fds = append(fds, h.extraFDs()...)
	for _, d := range h.Daemons {
		for _, l := range d.Listeners {
			fds = append(fds, l.FD)
		}
		if d.Pool == nil {
			continue
		}
		if d.Pool.NotifyFD >= 0 {
			fds = append(fds, d.Pool.NotifyFD)
		}
		for _, w := range d.Pool.Workers {
			for _, fd := range []int{w.Pipes.Stdout, w.Pipes.Stderr} {
				if fd >= 0 {
					fds = append(fds, fd)
				}
			}
		}
	}
	return fds
}

// ErrHandoverVersion is wrapped by the error for a hand-over this binary
// cannot read.
var ErrHandoverVersion = errors.New("unsupported hand-over version")

// DecodeHandover reads a hand-over of any version from MinHandoverVersion
// to HandoverVersion and returns it in the current form.
func DecodeHandover(b []byte) (*Handover, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode hand-over: %w", err)
	}
	switch {
	case v.Version < MinHandoverVersion || v.Version > HandoverVersion:
		return nil, fmt.Errorf("%w %d: this binary reads %d to %d", ErrHandoverVersion, v.Version, MinHandoverVersion, HandoverVersion)
	case v.Version == 1:
		return decodeHandoverV1(b)
	}
	h := &Handover{}
	if err := json.Unmarshal(b, h); err != nil {
		return nil, fmt.Errorf("decode hand-over v%d: %w", v.Version, err)
	}
	return h, nil
}

// handoverV1 is version 1 of the format.
type handoverV1 struct {
	Version   int       `json:"version"`
	Started   time.Time `json:"started"`
	Reloads   int       `json:"reloads"`
	ControlFD int       `json:"control_fd"`
	Daemons   []struct {
		Name      string                `json:"name"`
		Hash      string                `json:"hash"`
		Listeners []ListenerHandover    `json:"listeners"`
		Pool      *prefork.PoolHandover `json:"pool"`
	} `json:"daemons"`
	Pipes map[string][2]int `json:"pipes"` // worker pid → stdout, stderr
}

// decodeHandoverV1 migrates version 1: no resolver socket (the new master
// binds one), the notify socket at its default path (the caller fills it
// in), the pipes moved into the workers.
func decodeHandoverV1(b []byte) (*Handover, error) {
	var o handoverV1
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("decode hand-over v1: %w", err)
	}
	h := &Handover{Version: 1, Started: o.Started, Reloads: o.Reloads, ControlFD: o.ControlFD, ResolverFD: -1, FromVersion: "unknown"}
	for _, d := range o.Daemons {
		dh := DaemonHandover{Name: d.Name, Hash: d.Hash, Listeners: d.Listeners, Pool: d.Pool}
		if dh.Pool != nil {
			for i := range dh.Pool.Workers {
				w := &dh.Pool.Workers[i]
				w.Pipes = prefork.WorkerPipes{Stdout: -1, Stderr: -1}
				if p, ok := o.Pipes[strconv.Itoa(w.PID)]; ok {
					w.Pipes = prefork.WorkerPipes{Stdout: p[0], Stderr: p[1]}
				}
			}
		}
		h.Daemons = append(h.Daemons, dh)
	}
	return h, nil
}

// ReadHandover returns the hand-over this process was started with (by a
// master re-executing itself: HandoverEnv is set), or nil. It takes
// HandoverEnv out of the environment, so that no worker inherits it.
func ReadHandover() (*Handover, error) {
	v, ok := os.LookupEnv(HandoverEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(HandoverEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("%s=%q: not an fd", HandoverEnv, v)
	}
	f := os.NewFile(uintptr(fd), "nsfd-handover")
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read hand-over: %w", err)
	}
	return DecodeHandover(b)
}

// setInheritable clears (or, with inherit false, sets again) close-on-exec
// on fds; it stops at the first error when clearing.
func setInheritable(fds []int, inherit bool) error {
	for _, fd := range fds {
		flag := unix.FD_CLOEXEC
		if inherit {
			flag = 0
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flag); err != nil && inherit {
			return fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return nil
}
