package bench

import (
	"context"
	"fmt"
	"time"
)

// echoRounds runs the keep-alive rounds of one concurrency c over systems,
// rotating their order each round so that none is always first, and adds up
// each system's CPU (its processes' and its master's) over its rounds. A
// round that begins with fewer processes than the warm-up grew (a pool
// trimmed meanwhile) is counted in the system's short rounds.
func echoRounds(ctx context.Context, systems []*echoSystem, c, rounds int, d time.Duration) {
	for r := range rounds {
		for i := range systems {
			s := systems[(i+r)%len(systems)]
			pids := s.procs()
			if len(pids) < s.grown[c] {
				if s.short == nil {
					s.short = map[int]int{}
				}
				s.short[c]++
			}
			w0, m0 := totalCPU(pids), masterCPU(s.master)
			s.rounds[c] = append(s.rounds[c], generateLoad(ctx, echoKeepAlive, s.addr, c, d))
			mc := masterCPU(s.master) - m0
			s.cpu[c] += totalCPU(pids) - w0 + mc
			s.mcpu[c] += mc
		}
	}
}

// shortRoundNotes says which systems began rounds with a smaller pool than
// their warm-up grew: those rounds measured a pool growing back.
func shortRoundNotes(systems []*echoSystem, concurrencies []int) []string {
	var notes []string
	for _, s := range systems {
		for _, c := range concurrencies {
			if n := s.short[c]; n > 0 {
				notes = append(notes, fmt.Sprintf("%s, %d connections: %d of %d rounds began with fewer processes than the warm-up grew (%d): the pool was trimmed between rounds",
					s.name, c, n, len(s.rounds[c]), s.grown[c]))
			}
		}
	}
	return notes
}
