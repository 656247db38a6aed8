package worker

import (
	"net"
	"testing"
	"time"
)

func TestDefaultIdleMark(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ concurrency, want int }{
		{0, DefaultConcurrency - DefaultConcurrency/4}, {1, 1}, {2, 2}, {3, 3}, {4, 3}, {16, 12}, {64, 48},
	} {
		if got := DefaultIdleMark(c.concurrency); got != c.want {
			t.Errorf("DefaultIdleMark(%d) = %d, want %d", c.concurrency, got, c.want)
		}
	}
	if DefaultConcurrency < 16 {
		t.Errorf("DefaultConcurrency = %d: a Go worker should serve many connections by default", DefaultConcurrency)
	}
}

// Busy at N of N, idle again only below the mark: a worker hovering just
// under its limit stays busy for the master.
func TestLoadHysteresis(t *testing.T) {
	notes := wtLoadNotes(t)
	l := &Load{Concurrency: 8, IdleGrace: -1, RequestsInterval: time.Hour}
	defer l.Close()
	for range 7 {
		l.Begin()
	}
	notes.expectNone(t) // 7 of 8
	l.Begin()
	notes.expect(t, wtBusy(8))
	l.End() // 7
	l.End() // 6: at the mark (8 - 8/4), still busy
	notes.expectNone(t)
	l.Begin() // 7
	l.Begin() // 8: busy already, nothing to say
	notes.expectNone(t)
	l.End()
	l.End()
	l.End() // 5: below the mark
	notes.expect(t, wtIdle(10))
	l.Begin() // 6
	l.Begin() // 7
	notes.expectNone(t)
	l.Begin() // 8
	notes.expect(t, wtBusy(13))
}

// With a grace, climbing back to the mark cancels a deferred BUSY=0.
func TestLoadHysteresisGrace(t *testing.T) {
	notes := wtLoadNotes(t)
	l := &Load{Concurrency: 4, IdleMark: 2, IdleGrace: 200 * time.Millisecond, RequestsInterval: time.Hour}
	defer l.Close()
	for range 4 {
		l.Begin()
	}
	notes.expect(t, wtBusy(4))
	l.End()
	l.End()
	l.End()   // 1: below the mark, BUSY=0 deferred ...
	l.Begin() // ... and cancelled: back at the mark
	notes.expectNone(t)
	l.End() // 1 again
	notes.expect(t, wtIdle(5))
}

// A Load's zero value serves DefaultConcurrency before it is busy.
func TestLoadDefaultConcurrency(t *testing.T) {
	notes := wtLoadNotes(t)
	l := &Load{IdleGrace: -1, RequestsInterval: time.Hour}
	defer l.Close()
	for range DefaultConcurrency - 1 {
		l.Begin()
	}
	notes.expectNone(t)
	l.Begin()
	notes.expect(t, wtBusy(DefaultConcurrency))
}

// A Server with the default concurrency serves DefaultConcurrency
// connections at once; saturated, it leaves the next one in the listen
// backlog (no goroutine in Accept) and takes it when a slot frees, and it
// stays busy for the master until it drops below the idle mark.
func TestWorkerServeDefaultConcurrencySaturates(t *testing.T) {
	l := &wtCountingListener{Listener: wtTCPListener(t)}
	addr := l.Addr().String()
	notes, stop := wtServe(t, &Server{Handler: wtLineHandler, Listeners: []net.Listener{l}})

	conns := make([]*wtConn, 0, DefaultConcurrency)
	for i := range DefaultConcurrency {
		c := wtDial(t, "tcp", addr)
		c.roundTrip(t, "x")
		conns = append(conns, c)
		if i == DefaultConcurrency-2 {
			notes.expectNone(t)
		}
	}
	notes.expect(t, wtBusy(DefaultConcurrency))
	deadline := time.Now().Add(5 * time.Second)
	for l.in.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a goroutine still in Accept while saturated")
		}
		time.Sleep(time.Millisecond) // polling a counter, with a deadline
	}
	extra := wtDial(t, "tcp", addr)
	extra.unanswered(t, "waits", 100*time.Millisecond)
	conns[0].Close()
	extra.answer(t, "waits")
	conns[0] = extra
	notes.expectNone(t) // 64 again, and 63 was above the mark
	mark := DefaultIdleMark(DefaultConcurrency)
	for _, c := range conns[:DefaultConcurrency-mark+1] {
		c.Close()
	}
	notes.expect(t, wtIdle(DefaultConcurrency+1))
	for _, c := range conns[DefaultConcurrency-mark+1:] {
		c.Close()
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	notes.expect(t, wtStopping(DefaultConcurrency+1))
}
