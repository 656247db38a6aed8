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
// (absolute, at least 1), N at most config.MaxServersLimit.
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
	case abs && n < 1:
		return bad("is not a number of servers ≥ 1")
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
// pool's goroutine. A daemon that cannot be scaled keeps its sizes and its
// error is returned, joined with the others' (errors.Join), while the rest
// are scaled.
func (s *Supervisor) Scale(ctx context.Context, name string, n int, abs bool) ([]prefork.PolicyOptions, error) {
	type target struct {
		name string
		pool Pool
	}
	var (
		targets []target
		err     error
	)
	if derr := s.do(ctx, func(context.Context) {
		for _, d := range s.sortedDaemons() {
			if name != "" && d.cfg.Name != name {
				continue
			}
			if d.pool == nil || d.draining {
				if name != "" {
					err = fmt.Errorf("scale %s: %w", name, ErrDaemonStopped)
				}
				continue
			}
			targets = append(targets, target{d.cfg.Name, d.pool})
		}
		if name != "" && s.daemons[name] == nil {
			err = fmt.Errorf("scale %s: %w", name, ErrNoDaemon)
		}
	}); derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	var (
		out  []prefork.PolicyOptions
		errs []error
	)
	for _, t := range targets {
		o, err := t.pool.Resize(ctx, func(o prefork.PolicyOptions) (prefork.PolicyOptions, error) {
			return scalePolicy(o, n, abs)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("scale %s: %w", t.name, err))
			continue
		}
		out = append(out, o)
	}
	return out, errors.Join(errs...)
}
