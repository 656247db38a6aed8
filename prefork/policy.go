package prefork

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// PolicyOptions are Net::Server::PreFork's pool-size options.
type PolicyOptions struct {
	MinServers      int           `json:"min_servers"`       // workers kept alive at all times
	MaxServers      int           `json:"max_servers"`       // never more workers than this
	MinSpareServers int           `json:"min_spare_servers"` // idle workers wanted at all times (up to MaxServers)
	MaxSpareServers int           `json:"max_spare_servers"` // idle workers above this are retired
	MinChildTTL     time.Duration `json:"min_child_ttl"`     // no worker is retired sooner than this after its start
}

// Validate applies Net::Server::PreFork's rules.
func (o PolicyOptions) Validate() error {
	switch {
	case o.MinServers < 0:
		return fmt.Errorf("min_servers %d: must not be negative", o.MinServers)
	case o.MaxServers < o.MinServers:
		return fmt.Errorf("max_servers %d < min_servers %d", o.MaxServers, o.MinServers)
	case o.MinSpareServers < 0 || o.MaxSpareServers < 0:
		return errors.New("spare servers must not be negative")
	case o.MinSpareServers > o.MinServers && o.MinServers > 0: // 0: on demand
		return fmt.Errorf("min_spare_servers %d > min_servers %d", o.MinSpareServers, o.MinServers)
	case o.MinSpareServers > o.MaxSpareServers:
		return fmt.Errorf("min_spare_servers %d > max_spare_servers %d", o.MinSpareServers, o.MaxSpareServers)
	case o.MaxSpareServers >= o.MaxServers:
		return fmt.Errorf("max_spare_servers %d >= max_servers %d", o.MaxSpareServers, o.MaxServers)
	case o.MinChildTTL < 0:
		return errors.New("min_child_ttl must not be negative")
	}
	return nil
}

// WorkerState is where a worker is in its life, as the scoreboard sees it.
type WorkerState int

// Worker states.
const (
	StateStarting WorkerState = iota // executed, not ready yet (type = notify)
	StateIdle                        // ready, waiting for a connection
	StateBusy                        // handling a request
	StateStopping                    // told to stop (SIGTERM sent)
)

var stateNames = [...]string{"starting", "idle", "busy", "stopping"}

// String returns "starting", "idle", "busy" or "stopping".
func (s WorkerState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// WorkerStates lists every worker state, in the order of their values.
func WorkerStates() []WorkerState {
	out := make([]WorkerState, len(stateNames))
	for i := range out {
		out[i] = WorkerState(i)
	}
	return out
}

// Slot is one worker as the policy sees it: the scoreboard is a []Slot.
// Workers being replaced or stopped are not on it.
type Slot struct {
	State     WorkerState
	Started   time.Time
	IdleSince time.Time // when it last went idle; zero if it never was
}

// Plan is what the policy wants done.
type Plan struct {
	Spawn  int       // workers to start now
	Retire []int     // indexes into the scoreboard of idle workers to stop gracefully
	WakeAt time.Time // when to ask again, if a retirement waits for min_child_ttl; zero: only on the next event
}

// Decide is the spare-server policy, a pure function of the scoreboard, the
// options, the time the pool was last active (a worker busy, or a request
// begun) and now:
//
//   - below min_servers workers: spawn the difference;
//   - fewer idle (or starting) workers than min_spare_servers: spawn the gap, up to max_servers;
//   - more idle workers than max_spare_servers: retire the surplus, never below min_servers;
//   - once the pool has been quiet (no worker busy, no request begun) for min_child_ttl, idle workers above
//     min_spare_servers are retired too, never below min_servers, as Net::Server::PreFork
//     does after 30s without a request;
//
// and no worker is retired sooner than min_child_ttl after its start. Starting
// workers count as spares, so a burst of events never overshoots.
func Decide(sb []Slot, o PolicyOptions, lastActive, now time.Time) Plan {
	var p Plan
	total := len(sb)
	idle, starting, busy := 0, 0, 0
	for _, s := range sb {
		switch s.State {
		case StateIdle:
			idle++
		case StateStarting:
			starting++
		case StateBusy:
			busy++
		}
	}
	want := o.MinServers - total
	if gap := o.MinSpareServers - (idle + starting); gap > want {
		want = gap
	}
	if room := o.MaxServers - total; want > room {
		want = room
	}
	if want > 0 {
		p.Spawn = want
		return p
	}

	// Retirement: how many idle workers may go.
	surplus := idle - o.MaxSpareServers
	quietAt := lastActive.Add(o.MinChildTTL)
	if busy == 0 && !now.Before(quietAt) {
		if s := idle - o.MinSpareServers; s > surplus {
			surplus = s
		}
	}
	if s := total - o.MinServers; surplus > s {
		surplus = s
	}
	if busy == 0 && now.Before(quietAt) && idle > o.MinSpareServers && total > o.MinServers {
		p.WakeAt = quietAt
	}
	if surplus <= 0 {
		return p
	}
	// Oldest idle workers first; those younger than min_child_ttl wait.
	var cands []int
	for i, s := range sb {
		if s.State == StateIdle {
			cands = append(cands, i)
		}
	}
	sort.Slice(cands, func(a, b int) bool { return sb[cands[a]].Started.Before(sb[cands[b]].Started) })
	for _, i := range cands {
		if len(p.Retire) == surplus {
			break
		}
		ripe := sb[i].Started.Add(o.MinChildTTL)
		if now.Before(ripe) {
			if p.WakeAt.IsZero() || ripe.Before(p.WakeAt) {
				p.WakeAt = ripe
			}
			continue
		}
		p.Retire = append(p.Retire, i)
	}
	return p
}

// Saturated reports whether a pool with scoreboard sb has no capacity
// left: max_servers workers, every one busy (a worker serving several
// connections is busy only when all its slots are taken). New connections
// then wait in the listeners' kernel backlog until a worker frees a slot.
func Saturated(sb []Slot, o PolicyOptions) bool {
	if o.MaxServers <= 0 || len(sb) < o.MaxServers {
		return false
	}
	for _, s := range sb {
		if s.State != StateBusy {
			return false
		}
	}
	return true
}
