package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// ErrBadScale is wrapped by the errors of a scale request that cannot be
// applied: a malformed amount, or one that would break the pool-size rules
// or take max_servers past config.MaxServersLimit. Nothing changes.
var ErrBadScale = errors.New("bad scale")

// ParseScale parses `nsfd scale`'s argument: +N or -N (relative) or N
// (absolute: min_servers N, or 0 to stop the workers and keep the
// listeners), N at most config.MaxServersLimit.
func ParseScale(s string) (n int, abs bool, err error) {
	bad := func(why string) (int, bool, error) {
		return 0, false, fmt.Errorf("%w: %q %s", ErrBadScale, s, why)
	}
	digits := strings.TrimLeft(s, "+-")
	if s == "" || len(s)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return bad("is not +N, -N or N (a number of servers)")
	}
	abs = len(s) == len(digits)
	// Parse no more digits than the limit has: nothing can overflow.
	if len(strings.TrimLeft(digits, "0")) > len(strconv.Itoa(config.MaxServersLimit)) {
		return bad(fmt.Sprintf("is out of range (at most %d)", config.MaxServersLimit))
	}
	n, _ = strconv.Atoi(digits)
	switch {
	case n > config.MaxServersLimit:
		return bad(fmt.Sprintf("is out of range (at most %d)", config.MaxServersLimit))
	}
	if s[0] == '-' {
		n = -n
	}
	return n, abs, nil
}

// scalePolicy moves min_servers and max_servers together, as Net::Server's
// SIGTTIN/SIGTTOU do: by n, or with abs so that min_servers becomes n.
// min_servers stays at least 1 (a larger decrease is cut short there), and
// the spare-server bounds shrink with max_servers where the rules require.
// A result with max_servers above config.MaxServersLimit is refused, so is
// an n outside ±config.MaxServersLimit: the arithmetic cannot overflow.
func scalePolicy(o prefork.PolicyOptions, n int, abs bool) (prefork.PolicyOptions, error) {
	const limit = config.MaxServersLimit
	if n < -limit || n > limit || o.MinServers < 1 || o.MaxServers > limit {
		return o, fmt.Errorf("%w: %+d with min_servers %d, max_servers %d: out of range (limit %d)", ErrBadScale, n, o.MinServers, o.MaxServers, limit)
	}
	delta := n
	if abs {
		delta = n - o.MinServers
	}
	delta = max(delta, 1-o.MinServers)
	if o.MaxServers+delta > limit {
		return o, fmt.Errorf("%w: max_servers would be %d, more than the limit of %d", ErrBadScale, o.MaxServers+delta, limit)
	}
	o.MinServers += delta
	o.MaxServers += delta
	o.MinSpareServers = min(o.MinSpareServers, o.MinServers)
	o.MaxSpareServers = min(o.MaxSpareServers, o.MaxServers-1)
	o.MinSpareServers = min(o.MinSpareServers, o.MaxSpareServers)
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("%w: %w", ErrBadScale, err)
	}
	return o, nil
}

// Scale moves min_servers and max_servers of one daemon (name) or of every
// running daemon (name "") as scalePolicy says, each in one step on its
// pool's goroutine, and keeps the result as the daemon's scale
// (scalestate.go). N = 0 (abs) scales one daemon to 0: its workers drain,
// its listeners stay bound; a scale to N > 0 (or +N) starts it again. A
// daemon that cannot be scaled keeps its sizes and its error is returned,
// joined with the others' (errors.Join), while the rest are scaled.
func (s *Supervisor) Scale(ctx context.Context, name string, n int, abs bool) ([]prefork.PolicyOptions, error) {
	if name == "" && abs && n == 0 {
		return nil, fmt.Errorf("%w: only one daemon at a time scales to 0", ErrBadScale)
	}
	var (
		out  []prefork.PolicyOptions
		errs []error
	)
	if derr := s.do(ctx, func(runCtx context.Context) {
		if name != "" && s.daemons[name] == nil {
			errs = append(errs, fmt.Errorf("scale %s: %w", name, ErrNoDaemon))
			return
		}
		for _, d := range s.sortedDaemons() {
			if name != "" && d.cfg.Name != name {
				continue
			}
			zero := d.scale != nil && d.scale.Zero
			if d.draining || (d.pool == nil && (!zero || name == "")) {
				if name != "" {
					errs = append(errs, fmt.Errorf("scale %s: %w", name, ErrDaemonStopped))
				}
				continue
			}
			var (
				o   prefork.PolicyOptions
				err error
			)
			switch {
			case zero:
				o, err = s.scaleUp(runCtx, d, n, abs)
			case abs && n == 0:
				o = s.scaleToZero(d)
			default:
				o, err = d.pool.Resize(ctx, func(o prefork.PolicyOptions) (prefork.PolicyOptions, error) {
					return scalePolicy(o, n, abs)
				})
				if err == nil {
					d.scale = newScale(d.cfg, o)
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("scale %s: %w", d.cfg.Name, err))
				continue
			}
			out = append(out, o)
		}
	}); derr != nil {
		return nil, derr
	}
	return out, errors.Join(errs...)
}

// scaleToZero drains d's workers and keeps its listeners: it stays
// configured and registered (not resolvable: no worker runs), its clients
// wait in the listeners' backlog, and no connection wakes it. It returns
// the policy it now has, min_servers and max_servers 0.
func (s *Supervisor) scaleToZero(d *daemon) prefork.PolicyOptions {
	o := s.policy(d, d.cfg)
	if d.scale == nil {
		d.scale = &DaemonScale{FileMin: d.cfg.MinServers, FileMax: d.cfg.MaxServers, Min: o.MinServers, Max: o.MaxServers}
	}
	d.scale.Zero = true
	d.keepListeners = true
	s.log.Named(d.cfg.Name).Info("scaled to 0: stopping the workers, keeping the listeners")
	s.drainWithDependents([]*daemon{d}, func(d *daemon) {
		d.pool, d.keepListeners = nil, false
		s.reg.state(d.cfg.Name, prefork.PoolStopped.String()) // still registered, not resolvable
		s.kickGate()
	})
	o.MinServers, o.MaxServers = 0, 0
	return o
}

// scaleUp starts d, scaled to 0, at min_servers n (+n from 0 is the same):
// on the listeners it kept.
func (s *Supervisor) scaleUp(ctx context.Context, d *daemon, n int, abs bool) (prefork.PolicyOptions, error) {
	switch {
	case abs && n == 0:
		o := s.policy(d, d.cfg)
		o.MinServers, o.MaxServers = 0, 0
		return o, nil // already there
	case n <= 0:
		return prefork.PolicyOptions{}, fmt.Errorf("%w: %+d: it is scaled to 0; scale it to N, or start it", ErrBadScale, n)
	case d.cfg.MinServers < 1:
		return prefork.PolicyOptions{}, fmt.Errorf("%w: an on-demand daemon (min_servers = 0) scaled to 0 comes back with start", ErrBadScale)
	}
	o, err := scalePolicy(policyOf(d.cfg), n, true)
	if err != nil {
		return o, err
	}
	prev := d.scale
	d.scale = newScale(d.cfg, o)
	if err := s.startOrHold(ctx, d); err != nil {
		d.scale = prev
		return o, err
	}
	return o, nil
}
