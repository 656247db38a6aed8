package supervisor

import (
	"cmp"
	"slices"

	"github.com/nsfd/nsfd/registry"
)

// purgeEvery is how many heartbeats pass between two purges of other
// nodes' stale rows (PurgeStale, of rows 10 heartbeats or a minute old):
// a purge every heartbeat from every master would cost PostgreSQL a
// transaction per node per heartbeat for rows that go stale at most once.
const purgeEvery = 10

// wrote records that the worker set ws of daemon name is in the registry.
func (r *registrar) wrote(name string, ws []registry.Worker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.daemons[name]; d != nil {
		d.synced = sortedWorkers(ws)
	}
}

// sameWorkers reports whether a (as the pools report it) is the set
// already written, synced: same pids, slots, states and counters. A
// heartbeat writes nothing for a daemon whose workers did not change.
func sameWorkers(a, synced []registry.Worker) bool {
	if synced == nil || len(a) != len(synced) {
		return false
	}
	a = sortedWorkers(a)
	for i := range a {
		x, y := a[i], synced[i]
		if x.PID != y.PID || x.Slot != y.Slot || x.State != y.State || x.Requests != y.Requests ||
			!x.StartedAt.Equal(y.StartedAt) || x.LastExit != y.LastExit {
			return false
		}
	}
	return true
}

// sortedWorkers is a copy of ws by pid.
func sortedWorkers(ws []registry.Worker) []registry.Worker {
	out := slices.Clone(ws)
	if out == nil {
		out = []registry.Worker{}
	}
	slices.SortFunc(out, func(a, b registry.Worker) int { return cmp.Compare(a.PID, b.PID) })
	return out
}
