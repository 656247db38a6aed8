package supervisor

import (
	"fmt"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// A scale (`nsfd scale`, SIGTTIN/SIGTTOU) belongs to the daemon, not to
// its pool: it is kept across reloads, stops and starts and upgrades in
// place for as long as the daemon's file keeps the min_servers and
// max_servers it was scaled from (the keys a scale moves). A file that
// changes either drops the scale: the file wins, and the log says so.
// Any other change of the file (its environment, command, spare keys)
// applies on top of the scale.

// DaemonScale is a daemon's scale: what it runs at instead of its file's
// min_servers and max_servers. It is handed over by an upgrade in place.
type DaemonScale struct {
	FileMin int `json:"file_min_servers"` // the file's min_servers it was scaled from
	FileMax int `json:"file_max_servers"` // the file's max_servers it was scaled from
	Min     int `json:"min_servers"`      // min_servers it runs at (scaled to 0: comes back at)
	Max     int `json:"max_servers"`      // max_servers it runs at (scaled to 0: comes back at)
	// Zero: scaled to 0 — no worker, listeners kept; `nsfd scale NAME N`
	// or `nsfd start NAME` starts it again (at Min/Max for start).
	Zero bool `json:"zero,omitempty"`
}

// scaleKept says whether sc still applies to a daemon whose file now says
// d: the file's min_servers and max_servers are those sc was scaled from.
func scaleKept(sc *DaemonScale, d *config.Daemon) bool {
	return sc != nil && sc.FileMin == d.MinServers && sc.FileMax == d.MaxServers
}

// scaledPolicy is the policy o (a file's) under scale sc: min_servers and
// max_servers moved as sc says, the spare bounds shrunk with them as a
// scale does (scalePolicy). A nil sc, or one scaled to the file's sizes,
// leaves o as it is.
func scaledPolicy(o prefork.PolicyOptions, sc *DaemonScale) (prefork.PolicyOptions, error) {
	if sc == nil || (sc.Min == o.MinServers && sc.Max == o.MaxServers) {
		return o, nil
	}
	return scalePolicy(o, sc.Min, true)
}

// newScale is the scale of a daemon whose file says d and whose pool now
// runs at o: nil when that is the file's own sizes.
func newScale(d *config.Daemon, o prefork.PolicyOptions) *DaemonScale {
	if o.MinServers == d.MinServers && o.MaxServers == d.MaxServers {
		return nil
	}
	return &DaemonScale{FileMin: d.MinServers, FileMax: d.MaxServers, Min: o.MinServers, Max: o.MaxServers}
}

// policy is the pool sizes dm runs at on config d (its own, or the one a
// reload applies): d's, under dm's scale. A scale that no longer applies
// (d's sizes differ from those it was scaled from, or the result would
// not validate) is dropped here, with a log line.
func (s *Supervisor) policy(dm *daemon, d *config.Daemon) prefork.PolicyOptions {
	o := policyOf(d)
	if dm.scale == nil {
		return o
	}
	if s.keepScale(dm, d); dm.scale == nil {
		return o
	}
	p, err := scaledPolicy(o, dm.scale)
	if err != nil {
		s.dropScale(dm, err.Error())
		return o
	}
	return p
}

// keepScale drops dm's scale if the new config d changes what it was
// scaled from: called by a reload before d applies.
func (s *Supervisor) keepScale(dm *daemon, d *config.Daemon) {
	if dm.scale != nil && !scaleKept(dm.scale, d) {
		s.dropScale(dm, fmt.Sprintf("the file's min_servers/max_servers changed from %d/%d to %d/%d",
			dm.scale.FileMin, dm.scale.FileMax, d.MinServers, d.MaxServers))
	}
}

// dropScale forgets dm's scale and says why.
func (s *Supervisor) dropScale(dm *daemon, why string) {
	sc := dm.scale
	dm.scale = nil
	what := fmt.Sprintf("%d/%d", sc.Min, sc.Max)
	if sc.Zero {
		what = "0"
	}
	s.log.Named(dm.cfg.Name).Warn("scale dropped: the file wins", "scaled_to", what, "because", why)
}

// scaledFrom is what status shows of dm's scale: the file's sizes, or nil
// when it is not scaled.
func scaledFrom(dm *daemon) *ScaledFrom {
	if dm.scale == nil || !scaleKept(dm.scale, dm.cfg) {
		return nil
	}
	return &ScaledFrom{MinServers: dm.scale.FileMin, MaxServers: dm.scale.FileMax}
}

// ScaledFrom is, in a DaemonStatus, the file's min_servers and max_servers
// of a daemon that `nsfd scale` moved away from them.
type ScaledFrom struct {
	MinServers int `json:"min_servers"`
	MaxServers int `json:"max_servers"`
}

// zero says whether d is scaled to 0.
func (d *daemon) zero() bool { return d.scale != nil && d.scale.Zero }

// unzero undoes a scale to 0: d comes back at the sizes it had before it.
func (d *daemon) unzero() {
	if !d.zero() {
		return
	}
	d.scale.Zero = false
	if d.scale.Min == d.scale.FileMin && d.scale.Max == d.scale.FileMax {
		d.scale = nil
	}
}
