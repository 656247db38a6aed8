package prefork

import (
	"reflect"
	"testing"
	"time"
)

func TestPolicyOptionsValidate(t *testing.T) {
	ok := PolicyOptions{MinServers: 5, MaxServers: 50, MinSpareServers: 2, MaxSpareServers: 10, MinChildTTL: 10 * time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Net::Server defaults refused: %v", err)
	}
	// min_servers 0 is a daemon started on demand; its spares apply once
	// it is woken.
	if err := (PolicyOptions{MinServers: 0, MaxServers: 4, MinSpareServers: 1, MaxSpareServers: 2}).Validate(); err != nil {
		t.Errorf("on demand refused: %v", err)
	}
	for name, mod := range map[string]func(*PolicyOptions){
		"min_servers -1":          func(o *PolicyOptions) { o.MinServers = -1 },
		"max < min":               func(o *PolicyOptions) { o.MaxServers = 4 },
		"min_spare > min_servers": func(o *PolicyOptions) { o.MinSpareServers = 6 },
		"min_spare > max_spare":   func(o *PolicyOptions) { o.MinSpareServers = 3; o.MaxSpareServers = 2 },
		"max_spare = max_servers": func(o *PolicyOptions) { o.MaxSpareServers = 50 },
		"negative ttl":            func(o *PolicyOptions) { o.MinChildTTL = -1 },
	} {
		o := ok
		mod(&o)
		if o.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	now := t0.Add(time.Minute)
	opts := PolicyOptions{MinServers: 2, MaxServers: 10, MinSpareServers: 2, MaxSpareServers: 4, MinChildTTL: 10 * time.Second}
	old := t0                       // started long ago: may be retired
	young := now.Add(-time.Second)  // started 1s ago: protected by min_child_ttl
	recent := now.Add(-time.Second) // last busy 1s ago: not quiet
	quiet := now.Add(-time.Hour)    // last busy long ago
	slots := func(spec string, started time.Time) []Slot {
		var s []Slot
		for _, c := range spec {
			st := map[rune]WorkerState{'s': StateStarting, 'i': StateIdle, 'b': StateBusy}[c]
			s = append(s, Slot{State: st, Started: started})
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		sb       []Slot
		o        PolicyOptions
		lastBusy time.Time
		want     Plan
	}{
		{name: "empty pool starts min_servers", sb: nil, o: opts, lastBusy: quiet, want: Plan{Spawn: 2}},
		{name: "steady", sb: slots("ii", old), o: opts, lastBusy: quiet, want: Plan{}},
		{name: "starting ones count as spares", sb: slots("ss", old), o: opts, lastBusy: quiet, want: Plan{}},
		{name: "one busy: spawn a spare", sb: slots("bi", old), o: opts, lastBusy: recent, want: Plan{Spawn: 1}},
		{name: "6 busy: cover them plus 2 spares", sb: slots("bbbbbb", old), o: opts, lastBusy: recent, want: Plan{Spawn: 2}},
		{name: "never above max_servers", sb: slots("bbbbbbbbbi", old), o: opts, lastBusy: recent, want: Plan{}},
		{name: "room for one only", sb: slots("bbbbbbbbb", old), o: opts, lastBusy: recent, want: Plan{Spawn: 1}},
		{name: "too many idle while busy: down to max_spare", sb: slots("biiiiii", old), o: opts, lastBusy: recent,
			want: Plan{Retire: []int{1, 2}}},
		{name: "quiet: trim to min_spare, not below min_servers", sb: slots("iiiiii", old), o: opts, lastBusy: quiet,
			want: Plan{Retire: []int{0, 1, 2, 3}}},
		{name: "quiet soon: wake then", sb: slots("iiii", old), o: opts, lastBusy: recent,
			want: Plan{WakeAt: recent.Add(10 * time.Second)}},
		{name: "young workers wait for min_child_ttl", sb: slots("iiiiii", young), o: opts, lastBusy: quiet,
			want: Plan{WakeAt: young.Add(10 * time.Second)}},
		{name: "min_servers above spares is kept", sb: slots("iiiii", old),
			o: PolicyOptions{MinServers: 5, MaxServers: 10, MinSpareServers: 1, MaxSpareServers: 2}, lastBusy: quiet, want: Plan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.sb, tc.o, tc.lastBusy, now)
			if got.Spawn != tc.want.Spawn || !reflect.DeepEqual(got.Retire, tc.want.Retire) || !got.WakeAt.Equal(tc.want.WakeAt) {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDecideConverges runs the policy against a simulated load: the pool
// covers the load plus spares, never exceeds max_servers, and returns to
// min_servers once the load is gone.
func TestDecideConverges(t *testing.T) {
	o := PolicyOptions{MinServers: 2, MaxServers: 10, MinSpareServers: 2, MaxSpareServers: 4, MinChildTTL: 10 * time.Second}
	now := time.Unix(1_000_000, 0)
	var sb []Slot
	lastBusy := now
	apply := func(load int) {
		for range 20 { // events until the plan is empty
			for i := range sb {
				sb[i].State = StateIdle
			}
			for i := 0; i < load && i < len(sb); i++ {
				sb[i].State = StateBusy
			}
			if load > 0 {
				lastBusy = now
			}
			p := Decide(sb, o, lastBusy, now)
			if p.Spawn == 0 && len(p.Retire) == 0 {
				return
			}
			keep := sb[:0]
			for i, s := range sb {
				if !contains(p.Retire, i) {
					keep = append(keep, s)
				}
			}
			sb = keep
			for range p.Spawn {
				sb = append(sb, Slot{State: StateIdle, Started: now})
			}
			if len(sb) > o.MaxServers {
				t.Fatalf("%d workers > max_servers", len(sb))
			}
		}
	}
	apply(0)
	if len(sb) != 2 {
		t.Fatalf("idle pool: %d workers, want 2", len(sb))
	}
	apply(6)
	if len(sb) != 8 {
		t.Fatalf("6 busy: %d workers, want 8", len(sb))
	}
	apply(50)
	if len(sb) != 10 {
		t.Fatalf("50 busy: %d workers, want max_servers 10", len(sb))
	}
	now = now.Add(time.Minute)
	apply(0)
	if len(sb) != 2 {
		t.Fatalf("after the load: %d workers, want min_servers 2", len(sb))
	}
}

func contains(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestSaturated(t *testing.T) {
	t.Parallel()
	o := PolicyOptions{MinServers: 1, MaxServers: 3, MinSpareServers: 1, MaxSpareServers: 2}
	sb := func(states ...WorkerState) []Slot {
		var s []Slot
		for _, st := range states {
			s = append(s, Slot{State: st})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		sb   []Slot
		o    PolicyOptions
		want bool
	}{
		{"all busy at max_servers", sb(StateBusy, StateBusy, StateBusy), o, true},
		{"all busy below max_servers", sb(StateBusy, StateBusy), o, false},
		{"one idle", sb(StateBusy, StateIdle, StateBusy), o, false},
		{"one starting", sb(StateBusy, StateBusy, StateStarting), o, false},
		{"no max_servers", sb(StateBusy), PolicyOptions{}, false},
		{"empty", nil, o, false},
	} {
		if got := Saturated(tc.sb, tc.o); got != tc.want {
			t.Errorf("%s: Saturated = %v, want %v", tc.name, got, tc.want)
		}
	}
}
