//go:build !linux

package prefork

import (
	"errors"
	"fmt"
)

// Cgroups are a master's control groups; only Linux has them: elsewhere
// containment is the process groups alone.
type Cgroups struct{}

// OpenCgroups returns Cgroups that are always degraded.
func OpenCgroups(CgroupOptions) *Cgroups { return &Cgroups{} }

// Degraded says why there are no control groups.
func (c *Cgroups) Degraded() string { return "control groups are Linux's" }

// String describes the layout.
func (c *Cgroups) String() string { return "degraded (process groups only): " + c.Degraded() }

// Close does nothing.
func (c *Cgroups) Close() {}

// Daemon returns nil, and an error if l sets a limit.
func (c *Cgroups) Daemon(name string, l Limits) (*DaemonCgroup, error) {
	if l != (Limits{}) {
		return nil, fmt.Errorf("daemon %s: resource limits need control groups: %s", name, c.Degraded())
	}
	return nil, nil
}

// DaemonCgroup is one daemon's control group; never made here.
type DaemonCgroup struct{}

// SetLimits does nothing.
func (d *DaemonCgroup) SetLimits(Limits) error { return nil }

// Limits returns no limits.
func (d *DaemonCgroup) Limits() Limits { return Limits{} }

// Stats returns nothing.
func (d *DaemonCgroup) Stats() GroupStats { return GroupStats{} }

// Close does nothing.
func (d *DaemonCgroup) Close() {}

type workerCgroup struct{ late bool }

func (d *DaemonCgroup) newWorker() (*workerCgroup, error) { return &workerCgroup{}, nil }
func (w *workerCgroup) procsFiles() []string              { return nil }
func (w *workerCgroup) v2Dir() string                     { return "" }
func (w *workerCgroup) kill() bool                        { return false }
func (w *workerCgroup) stats() GroupStats                 { return GroupStats{} }
func (w *workerCgroup) oomKills() int                     { return 0 }
func (w *workerCgroup) remove()                           {}

var errNoProc = errors.New("no /proc here")

func residentBytes(int) (int64, error)  { return 0, errNoProc }
func procUsage(int) (GroupStats, error) { return GroupStats{}, errNoProc }
