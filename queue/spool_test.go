package queue

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// TestSpool runs the spool's cases against both engines.
func TestSpool(t *testing.T) {
	for _, e := range engines {
		t.Run(e.typ, func(t *testing.T) {
			for _, c := range spoolCases {
				t.Run(c.name, func(t *testing.T) {
					reads.Lock()
					reads.n = map[string]int{}
					reads.Unlock()
					dsn := e.dsn(t)
					c.run(t, env{e.typ, dsn, open(t, e.typ, dsn)})
				})
			}
		})
	}
}

func spoolOf(t *testing.T, r registry.Registry) Spool {
	t.Helper()
	sp, err := SpoolOf(r)
	must(t, err)
	return sp
}

func putJob(t *testing.T, sp Spool, id, daemon string) Job {
	t.Helper()
	j, err := sp.PutJob(ctx, Job{ID: id, Daemon: daemon, Request: []byte(`{"command":"reindex"}`)})
	must(t, err)
	return j
}

func ids(js []Job) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

// waitResult is what a WaitJob call in a goroutine returned, and when.
type waitResult struct {
	j   Job
	err error
	at  time.Time
}

func waitAsync(sp Spool, ctx context.Context, id string) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		j, err := sp.WaitJob(ctx, id)
		ch <- waitResult{j, err, time.Now()}
	}()
	return ch
}

// reads counts WaitJob's reads of unfinished jobs, by id.
var reads = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

func init() {
	waitReadHook = func(id string) {
		reads.Lock()
		reads.n[id]++
		reads.Unlock()
	}
}

// waiting returns once n waiters have read the unfinished job id and sleep,
// so that a test changes the job only then: what wakes them is what the
// test is about.
func waiting(t *testing.T, id string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d waiter(s) for %s", n, id), func() bool {
		reads.Lock()
		defer reads.Unlock()
		return reads.n[id] >= n
	})
}

var spoolCases = []struct {
	name string
	run  func(t *testing.T, e env)
}{
	{"put get mod del", func(t *testing.T, e env) {
		sp := spoolOf(t, e.r)
		before := time.Now().Add(-time.Second)
		j := putJob(t, sp, "a1@n1", "kv")
		if j.Status != JobVirgin || j.CreatedAt.Before(before) || !j.CreatedAt.Equal(j.UpdatedAt) {
			t.Fatalf("put: %+v", j)
		}
		got, err := sp.GetJob(ctx, "a1@n1")
		must(t, err)
		if !reflect.DeepEqual(got, j) || got.Response != nil {
			t.Fatalf("get: %+v, want %+v", got, j)
		}
		if _, err := sp.PutJob(ctx, Job{ID: "a1@n1", Daemon: "kv"}); !errors.Is(err, ErrExists) {
			t.Fatalf("put twice: %v", err)
		}

		m, err := sp.ModJob(ctx, "a1@n1", JobUpdate{Status: JobWorking})
		must(t, err)
		if m.Status != JobWorking || m.Response != nil || string(m.Request) != `{"command":"reindex"}` || m.UpdatedAt.Before(j.UpdatedAt) {
			t.Fatalf("mod status: %+v", m)
		}
		m, err = sp.ModJob(ctx, "a1@n1", JobUpdate{Response: []byte(`{"code":1000}`)})
		must(t, err)
		if m.Status != JobWorking || string(m.Response) != `{"code":1000}` {
			t.Fatalf("mod response keeps status: %+v", m)
		}
		m, err = sp.ModJob(ctx, "a1@n1", JobUpdate{Status: JobDone})
		must(t, err)
		if m.Status != JobDone || string(m.Response) != `{"code":1000}` || !m.CreatedAt.Equal(j.CreatedAt) {
			t.Fatalf("mod keeps response: %+v", m)
		}

		must(t, sp.DelJob(ctx, "a1@n1"))
		for _, err := range []error{
			func() error { _, err := sp.GetJob(ctx, "a1@n1"); return err }(),
			func() error { _, err := sp.ModJob(ctx, "a1@n1", JobUpdate{Status: JobDone}); return err }(),
			sp.DelJob(ctx, "a1@n1"),
		} {
			if !errors.Is(err, registry.ErrNotFound) || err.Error() != `get job "a1@n1": no such job` &&
				err.Error() != `mod job "a1@n1": no such job` && err.Error() != `del job "a1@n1": no such job` {
				t.Errorf("after del: %v", err)
			}
		}
	}},

	{"invalid jobs", func(t *testing.T, e env) {
		sp := spoolOf(t, e.r)
		long := make([]byte, MaxJobIDLength+1)
		for i := range long {
			long[i] = 'x'
		}
		for _, j := range []Job{{Daemon: "kv"}, {ID: "x"}, {ID: "x", Daemon: "kv", Status: "modified"}, {ID: string(long), Daemon: "kv"}} {
			if _, err := sp.PutJob(ctx, j); err == nil {
				t.Errorf("put %+v: no error", j)
			}
		}
		putJob(t, sp, "x", "kv")
		if _, err := sp.ModJob(ctx, "x", JobUpdate{Status: "archived"}); err == nil {
			t.Error("mod to an unknown status: no error")
		}
		if _, err := sp.PurgeJobs(ctx, 0); err == nil {
			t.Error("purge 0: no error")
		}
	}},

	{"list and purge", func(t *testing.T, e env) {
		sp := spoolOf(t, e.r)
		for i := range 5 {
			putJob(t, sp, fmt.Sprintf("j%d@n1", i), []string{"kv", "mail"}[i%2])
		}
		_, err := sp.ModJob(ctx, "j1@n1", JobUpdate{Status: JobDone, Response: []byte(`{}`)})
		must(t, err)
		_, err = sp.ModJob(ctx, "j2@n1", JobUpdate{Status: JobFailed, Response: []byte(`{}`)})
		must(t, err)
		for _, c := range []struct {
			f    JobFilter
			want []string
		}{
			{JobFilter{}, []string{"j0@n1", "j1@n1", "j2@n1", "j3@n1", "j4@n1"}},
			{JobFilter{Status: JobVirgin}, []string{"j0@n1", "j3@n1", "j4@n1"}},
			{JobFilter{Daemon: "kv"}, []string{"j0@n1", "j2@n1", "j4@n1"}},
			{JobFilter{Daemon: "kv", Status: JobVirgin}, []string{"j0@n1", "j4@n1"}},
			{JobFilter{Daemon: "mail", Status: JobDone}, []string{"j1@n1"}},
			{JobFilter{Limit: 2}, []string{"j0@n1", "j1@n1"}},
			{JobFilter{Status: JobWorking}, []string{}},
		} {
			js, err := sp.ListJobs(ctx, c.f)
			must(t, err)
			if got := ids(js); !reflect.DeepEqual(got, c.want) {
				t.Errorf("list %+v = %q, want %q", c.f, got, c.want)
			}
		}
		// Only finished jobs older than the age go.
		n, err := sp.PurgeJobs(ctx, time.Hour)
		must(t, err)
		if n != 0 {
			t.Fatalf("purged %d fresh jobs", n)
		}
		st := storeOf(t, e.r)
		_, err = st.Writer().ExecContext(ctx, st.Dialect().Render(`UPDATE spool SET updated_at = updated_at - ?`),
			2*time.Hour.Milliseconds())
		must(t, err)
		n, err = sp.PurgeJobs(ctx, time.Hour)
		must(t, err)
		js, _ := sp.ListJobs(ctx, JobFilter{})
		if n != 2 || !reflect.DeepEqual(ids(js), []string{"j0@n1", "j3@n1", "j4@n1"}) {
			t.Fatalf("purged %d, left %q", n, ids(js))
		}
	}},

	{"wait is woken in process", func(t *testing.T, e env) {
		sp := spoolOf(t, e.r)
		putJob(t, sp, "w@n1", "kv")
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res := waitAsync(sp, ctx, "w@n1")
		waiting(t, "w@n1", 1)
		if _, err := sp.ModJob(ctx, "w@n1", JobUpdate{Status: JobWorking}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-res:
			t.Fatalf("wait returned for an unfinished job: %+v", r)
		case <-time.After(50 * time.Millisecond):
		}
		mod := time.Now()
		_, err := sp.ModJob(ctx, "w@n1", JobUpdate{Status: JobDone, Response: []byte(`{"code":1000}`)})
		must(t, err)
		r := <-res
		must(t, r.err)
		if r.j.Status != JobDone || string(r.j.Response) != `{"code":1000}` {
			t.Fatalf("wait: %+v", r.j)
		}
		if d := r.at.Sub(mod); d > SpoolRecheck/2 {
			t.Fatalf("woken %v after the result landed: it polled", d)
		}
	}},

	{"wait is woken by another handle", func(t *testing.T, e env) {
		// Another handle on the same database is what another process
		// (another queue worker) has: no in-process wake-up reaches it,
		// only the engine's (NOTIFY, or the WAL written).
		sp := spoolOf(t, e.r)
		other := spoolOf(t, open(t, e.typ, e.dsn))
		putJob(t, sp, "x@n1", "kv")
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var results []<-chan waitResult
		for range 3 {
			results = append(results, waitAsync(sp, ctx, "x@n1"))
		}
		waiting(t, "x@n1", 3)
		mod := time.Now()
		_, err := other.ModJob(ctx, "x@n1", JobUpdate{Status: JobFailed, Response: []byte(`{"code":2400}`)})
		must(t, err)
		for _, res := range results {
			r := <-res
			must(t, r.err)
			if r.j.Status != JobFailed {
				t.Fatalf("wait: %+v", r.j)
			}
			if d := r.at.Sub(mod); d > SpoolRecheck/2 {
				t.Fatalf("woken %v after another handle stored the result: it polled", d)
			}
		}
		// The watcher stops with the last waiter.
		eventually(t, "the hub to go", func() bool {
			hubsMu.Lock()
			defer hubsMu.Unlock()
			return waitHubs[sp.(*sqlSpool).s] == nil
		})
	}},

	{"wait ends", func(t *testing.T, e env) {
		sp := spoolOf(t, e.r)
		// A finished job: at once.
		putJob(t, sp, "f@n1", "kv")
		_, err := sp.ModJob(ctx, "f@n1", JobUpdate{Status: JobDone})
		must(t, err)
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if j, err := sp.WaitJob(short, "f@n1"); err != nil || j.Status != JobDone {
			t.Fatalf("wait finished: %+v %v", j, err)
		}
		// An unknown job: ErrNotFound.
		if _, err := sp.WaitJob(short, "nope"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("wait unknown: %v", err)
		}
		// A deadline.
		putJob(t, sp, "slow@n1", "kv")
		dl, cancelDL := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancelDL()
		start := time.Now()
		if _, err := sp.WaitJob(dl, "slow@n1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("wait past the deadline: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("deadline of 100ms honoured after %v", d)
		}
		// A job deleted while waited for.
		wctx, cancelW := context.WithTimeout(ctx, time.Minute)
		defer cancelW()
		res := waitAsync(sp, wctx, "slow@n1")
		waiting(t, "slow@n1", 2) // the deadline's wait read it once
		must(t, sp.DelJob(ctx, "slow@n1"))
		if r := <-res; !errors.Is(r.err, registry.ErrNotFound) {
			t.Fatalf("wait for a deleted job: %+v", r)
		}
	}},

	{"many waiters", func(t *testing.T, e env) {
		sp := spoolOf(t, e.r)
		const n = 20
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			id := fmt.Sprintf("m%d@n1", i)
			putJob(t, sp, id, "kv")
			wg.Go(func() {
				j, err := sp.WaitJob(ctx, id)
				if err == nil && j.Status != JobDone {
					err = fmt.Errorf("%s: %s", id, j.Status)
				}
				errs <- err
			})
		}
		for i := range n {
			_, err := sp.ModJob(ctx, fmt.Sprintf("m%d@n1", i), JobUpdate{Status: JobDone})
			must(t, err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
	}},
}
