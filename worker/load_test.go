package worker

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wtLoadNotes listens on a NOTIFY_SOCKET for the test and sets it.
func wtLoadNotes(t *testing.T) *wtNotes {
	t.Helper()
	notes := wtListenNotify(t)
	t.Setenv(EnvNotifySocket, notes.path)
	t.Setenv(EnvMaxRequests, "")
	return notes
}

func TestLoadCoalescesBackToBack(t *testing.T) {
	notes := wtLoadNotes(t)
	const grace = 200 * time.Millisecond
	l := &Load{Concurrency: 1, IdleGrace: grace}
	defer l.Close()
	for range 49 {
		l.Begin()
		l.End()
	}
	l.Begin()
	ended := time.Now() // before the last End: BUSY=0 is due a grace after it
	l.End()
	notes.expect(t, wtBusy(1)) // at once
	notes.expectNone(t)        // the other 49 connections began within the grace
	notes.expect(t, wtIdle(50))
	if d := time.Since(ended); d < grace {
		t.Errorf("BUSY=0 came %v after the last End, before the grace of %v", d, grace)
	}
	notes.expectNone(t)
	if n := l.Requests(); n != 50 {
		t.Errorf("Requests() = %d, want 50", n)
	}

	// The next run starts busy again, at once.
	l.Begin()
	notes.expect(t, wtBusy(51))
	l.End()
	notes.expect(t, wtIdle(51))
}

func TestLoadConcurrencyBusyWhenFull(t *testing.T) {
	notes := wtLoadNotes(t)
	l := &Load{Concurrency: 2, IdleGrace: 200 * time.Millisecond, RequestsInterval: time.Hour}
	defer l.Close()
	l.Begin()
	notes.expectNone(t) // one of two: not busy, and the count waits for the interval
	l.Begin()
	notes.expect(t, wtBusy(2))
	l.End()   // below the limit: BUSY=0 deferred ...
	l.Begin() // ... and cancelled: full again
	l.End()
	l.End()
	notes.expect(t, wtIdle(3))
	notes.expectNone(t)
}

// A worker that never fills up (Concurrency > 1, few clients) still has
// its requests counted: REQUESTS=n within RequestsInterval.
func TestLoadCountsWithoutFillingUp(t *testing.T) {
	notes := wtLoadNotes(t)
	l := &Load{Concurrency: 64, RequestsInterval: 50 * time.Millisecond}
	defer l.Close()
	for range 3 {
		l.Begin()
		l.End()
	}
	for last := 0; last < 3; {
		got := notes.next(t)
		n, err := strconv.Atoi(strings.TrimPrefix(got, NotifyRequests))
		if !strings.HasPrefix(got, NotifyRequests) || err != nil || n <= last {
			t.Fatalf("got %q after REQUESTS=%d; want REQUESTS= up to 3", got, last)
		}
		last = n
	}
	notes.expectNone(t)
}

// A worker busy without a break reports its count at least every
// RequestsInterval, without a BUSY word.
func TestLoadReportsCountWhileBusy(t *testing.T) {
	notes := wtLoadNotes(t)
	const every = 50 * time.Millisecond
	l := &Load{Concurrency: 1, IdleGrace: time.Hour, RequestsInterval: every}
	defer l.Close()
	busySince := time.Now() // before BUSY=1: the next count is due an interval after it
	l.Begin()
	notes.expect(t, wtBusy(1))
	deadline := busySince.Add(10 * time.Second)
	var got string
	for n := 1; ; n++ {
		l.End()
		l.Begin()
		if msg, ok := notes.try(t); ok {
			got = msg
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report in %d back-to-back requests over 10s", n)
		}
	}
	n, err := strconv.Atoi(strings.TrimPrefix(got, NotifyRequests))
	if !strings.HasPrefix(got, NotifyRequests) || err != nil || n < 2 {
		t.Fatalf("while busy: got %q, want REQUESTS=n, n > 1", got)
	}
	if d := time.Since(busySince); d < every {
		t.Errorf("count reported %v after BUSY=1, before the interval of %v", d, every)
	}
	l.End()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	notes.expect(t, wtIdle(l.Requests())) // Close sends the deferred BUSY=0 at once
}

// Reaching NSFD_MAX_REQUESTS is reported at once, however long the grace.
func TestLoadReportsMaxRequestsAtOnce(t *testing.T) {
	notes := wtLoadNotes(t)
	t.Setenv(EnvMaxRequests, "5")
	l := &Load{Concurrency: 1, IdleGrace: time.Hour, RequestsInterval: time.Hour}
	defer l.Close()
	for range 7 {
		l.Begin()
		l.End()
	}
	notes.expect(t, wtBusy(1), NotifyRequests+"5")
	notes.expectNone(t)
	if err := l.Stopping(); err != nil {
		t.Fatal(err)
	}
	notes.expect(t, NotifyIdle+"\n"+wtStopping(7)) // the deferred BUSY=0 goes with STOPPING=1
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	notes.expectNone(t) // nothing left to send
}

func TestLoadCloseFlushes(t *testing.T) {
	notes := wtLoadNotes(t)
	l := &Load{Concurrency: 1, IdleGrace: time.Hour, RequestsInterval: time.Hour}
	l.Begin()
	l.End()
	notes.expect(t, wtBusy(1))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	notes.expect(t, wtIdle(1))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Begin() // after Close: counted, not reported
	l.End()
	notes.expectNone(t)
	if n := l.Requests(); n != 2 {
		t.Errorf("Requests() = %d, want 2", n)
	}
}

// Without NOTIFY_SOCKET a Load counts, sends nothing and arms no timer.
func TestLoadWithoutSocket(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	l := &Load{Concurrency: 1}
	for range 3 {
		l.Begin()
		l.End()
	}
	if err := l.Stopping(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	timer := l.timer
	l.mu.Unlock()
	if timer != nil {
		t.Error("a Load without NOTIFY_SOCKET armed a timer")
	}
	if n := l.Requests(); n != 3 {
		t.Errorf("Requests() = %d, want 3", n)
	}
}

// Many goroutines beginning and ending at once: BUSY words alternate, every
// report carries a count that never goes down, and the last one is exact.
func TestLoadConcurrentUse(t *testing.T) {
	notes := wtLoadNotes(t)
	l := &Load{Concurrency: 4, IdleGrace: 20 * time.Microsecond, RequestsInterval: time.Millisecond}
	var got []string
	received := make(chan struct{})
	go func() {
		defer close(received)
		buf := make([]byte, MaxNotifySize)
		for {
			notes.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := notes.conn.Read(buf)
			if err != nil {
				return
			}
			got = append(got, string(buf[:k]))
			if strings.HasPrefix(got[len(got)-1], NotifyStopping) {
				return
			}
		}
	}()
	const goroutines, each = 8, 300
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				l.Begin()
				l.End()
			}
		})
	}
	wg.Wait()
	if err := l.Stopping(); err != nil {
		t.Fatal(err)
	}
	<-received
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	busy, last := false, 0
	for _, msg := range got {
		// The master's parser (prefork.ParseMessage) is not the worker's
		// to import: read the words this test is about by hand.
		requests, hasRequests := -1, false
		for word := range strings.SplitSeq(msg, "\n") {
			if v, ok := strings.CutPrefix(word, NotifyRequests); ok {
				n, err := ParseCount([]byte(v))
				if err != nil {
					t.Fatalf("datagram %q: %v", msg, err)
				}
				requests, hasRequests = n, true
			}
		}
		if !hasRequests {
			t.Fatalf("datagram %q without %s", msg, NotifyRequests)
		}
		if requests < last {
			t.Fatalf("REQUESTS went down from %d: %q", last, msg)
		}
		last = requests
		switch {
		case slices.Contains(strings.Split(msg, "\n"), NotifyBusy):
			if busy {
				t.Fatalf("two BUSY=1 without BUSY=0 (%q)", got)
			}
			busy = true
		case slices.Contains(strings.Split(msg, "\n"), NotifyIdle):
			if !busy {
				t.Fatalf("BUSY=0 while idle (%q)", got)
			}
			busy = false
		}
	}
	if want := goroutines * each; last != want {
		t.Fatalf("last report REQUESTS=%d, want %d (%d datagrams)", last, want, len(got))
	}
	t.Logf("%d requests, %d datagrams", goroutines*each, len(got))
}

// TestWorkerServeCoalescesBurst: Serve with one connection at a time and a
// burst of back-to-back connections sends one BUSY=1 and, after the burst,
// one BUSY=0 with the count.
func TestWorkerServeCoalescesBurst(t *testing.T) {
	l := wtTCPListener(t)
	t.Setenv(EnvMaxRequests, "")
	const grace = 500 * time.Millisecond
	notes, stop := wtServe(t, &Server{Handler: wtLineHandler, Concurrency: 1, IdleGrace: grace, Listeners: []net.Listener{l}})
	const burst = 20
	for i := range burst {
		c := wtDial(t, "tcp", l.Addr().String())
		c.roundTrip(t, fmt.Sprint("burst ", i))
		c.Close()
	}
	ended := time.Now()
	notes.expect(t, wtBusy(1), wtIdle(burst))
	if d := time.Since(ended); d < grace/2 {
		t.Errorf("BUSY=0 came %v after the burst: not deferred by the grace of %v", d, grace)
	}
	notes.expectNone(t)
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	notes.expect(t, wtStopping(burst))
	notes.expectNone(t)
}

// TestWorkerServeMaxRequests: Serve reports the count at once when it
// reaches NSFD_MAX_REQUESTS, so the master can replace the worker.
func TestWorkerServeMaxRequests(t *testing.T) {
	l := wtTCPListener(t)
	t.Setenv(EnvMaxRequests, "3")
	notes, stop := wtServe(t, &Server{Handler: wtLineHandler, Concurrency: 1, IdleGrace: time.Hour, Listeners: []net.Listener{l}})
	for i := range 3 {
		c := wtDial(t, "tcp", l.Addr().String())
		c.roundTrip(t, fmt.Sprint("request ", i))
		c.Close()
	}
	notes.expect(t, wtBusy(1), NotifyRequests+"3")
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The last handler may return before Serve drains (its deferred BUSY=0
	// goes with STOPPING=1) or after (Serve sends it as it returns).
	switch got := notes.next(t); got {
	case NotifyIdle + "\n" + wtStopping(3):
	case wtStopping(3):
		notes.expect(t, wtIdle(3))
	default:
		t.Fatalf("got %q, want STOPPING=1 and BUSY=0 with REQUESTS=3", got)
	}
	notes.expectNone(t)
}

func TestWorkerParseMaxRequestsEnv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		bad  bool
	}{
		{in: "", want: 0},
		{in: "0", want: 0},
		{in: "1000", want: 1000},
		{in: "1013", want: 1013},
		{in: "-1", bad: true},
		{in: "1e3", bad: true},
		{in: " 5", bad: true},
		{in: "lots", bad: true},
	} {
		got, err := parseMaxRequestsEnv(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseMaxRequestsEnv(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// BenchmarkLoadBeginEnd is the worker's cost of a connection that follows
// another within the idle grace: the datagrams are coalesced away, what is
// left is the bookkeeping and the timer. cpu-ns/op counts the CPU of every
// thread of the process, so also the wake-ups a timer causes elsewhere.
func BenchmarkLoadBeginEnd(b *testing.B) {
	for _, socket := range []bool{false, true} {
		b.Run(fmt.Sprintf("socket=%v", socket), func(b *testing.B) {
			b.Setenv(EnvMaxRequests, "")
			b.Setenv(EnvNotifySocket, "")
			if socket {
				notes := wtListenNotify(b)
				b.Setenv(EnvNotifySocket, notes.path)
			}
			l := &Load{Concurrency: 1}
			defer l.Close()
			cpu0 := wtCPU(b)
			for b.Loop() {
				l.Begin()
				l.End()
			}
			b.ReportMetric(float64(wtCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// wtCPU is the CPU time of the process so far.
func wtCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLoadTimer: both kinds of timer fire once armed, a Reset replaces an
// earlier arming, and Close returns.
func TestLoadTimer(t *testing.T) {
	for name, newTimer := range map[string]func(func()) loadTimer{
		"platform": newLoadTimer,
		"runtime":  func(f func()) loadTimer { return newRuntimeTimer(f) },
	} {
		t.Run(name, func(t *testing.T) {
			fired := make(chan struct{}, 10)
			tm := newTimer(func() { fired <- struct{}{} })
			tm.Reset(time.Hour)
			tm.Reset(time.Millisecond) // replaces the hour
			select {
			case <-fired:
			case <-time.After(5 * time.Second):
				t.Fatal("timer did not fire")
			}
			tm.Reset(time.Hour)
			tm.Stop()
			tm.Close()
		})
	}
}
