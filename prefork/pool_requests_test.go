package prefork

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	proto "github.com/nsfd/nsfd/worker"
)

func init() {
	// pool-count counts its requests itself: one REQUESTS=n per connection,
	// never a BUSY word, as a worker serving many connections at once might.
	testHelpers["pool-count"] = func() {
		l, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Printf("max_requests=%q\n", os.Getenv(proto.EnvMaxRequests))
		rawNotify(proto.NotifyReady)
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() { <-term; os.Exit(0) }()
		for n := 1; ; n++ {
			c, err := l.Accept()
			if err != nil {
				os.Exit(4)
			}
			rawNotify(proto.NotifyRequests + strconv.Itoa(n))
			fmt.Fprintf(c, "%d\n", os.Getpid())
			c.Close()
		}
	}
}

// TestPoolCountsRequestsWord drives the master's count with notes alone,
// without a process: REQUESTS=n is monotonic, and once a worker has sent it
// BUSY=1 no longer counts.
func TestPoolCountsRequestsWord(t *testing.T) {
	for _, tc := range []struct {
		name     string
		notes    []string
		want     int
		replaced bool // max_requests is 5
	}{
		{"busy only", []string{"BUSY=1", "BUSY=0", "BUSY=1", "BUSY=0", "BUSY=1"}, 3, false},
		{"busy reaches max_requests", []string{"BUSY=1", "BUSY=0", "BUSY=1", "BUSY=0", "BUSY=1", "BUSY=0", "BUSY=1", "BUSY=0", "BUSY=1"}, 5, true},
		{"requests only", []string{"REQUESTS=2", "REQUESTS=4"}, 4, false},
		{"smaller is ignored", []string{"REQUESTS=4", "REQUESTS=2", "REQUESTS=0"}, 4, false},
		{"requests reaches max_requests", []string{"REQUESTS=1", "REQUESTS=5"}, 5, true},
		{"requests jumps past max_requests", []string{"REQUESTS=70"}, 70, true},
		{"coalesced", []string{"BUSY=1\nREQUESTS=1", "BUSY=0\nREQUESTS=3", "BUSY=1\nREQUESTS=4", "BUSY=0\nREQUESTS=4"}, 4, false},
		{"busy after requests does not count", []string{"BUSY=1", "BUSY=0\nREQUESTS=3", "BUSY=1", "BUSY=0", "BUSY=1", "BUSY=0"}, 3, false},
		{"busy before requests counts until then", []string{"BUSY=1", "BUSY=0", "BUSY=1", "BUSY=0\nREQUESTS=1"}, 2, false},
		{"stopping carries the final count", []string{"BUSY=1\nREQUESTS=1", "STOPPING=1\nREQUESTS=4"}, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPool(Config{Name: "t", Command: []string{"w"}, Shim: []string{"shim"},
				Policy: PolicyOptions{MinServers: 1, MaxServers: 2, MaxSpareServers: 1}})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			w := &worker{pid: 42, ready: true, state: StateIdle, started: now, idleSince: now, maxReq: 5}
			p.workers[w.pid] = w
			for _, s := range tc.notes {
				m, err := ParseMessage([]byte(s))
				if err != nil {
					t.Fatal(err)
				}
				p.handleNote(note{pid: w.pid, msg: m}, now)
			}
			st := p.snapshot()
			if w.requests != tc.want || st.Requests != tc.want || st.Workers[0].Requests != tc.want {
				t.Errorf("requests: worker %d, pool %d, status %d; want %d", w.requests, st.Requests, st.Workers[0].Requests, tc.want)
			}
			if got := w.replaced; got != tc.replaced {
				t.Errorf("replaced = %v, want %v", got, tc.replaced)
			}
		})
	}
}

// TestPoolReplacesWorkerAtMaxRequestsFromRequestsWord: a worker that never
// reports BUSY, only REQUESTS=n, is replaced once its count reaches
// max_requests.
func TestPoolReplacesWorkerAtMaxRequestsFromRequestsWord(t *testing.T) {
	exits := make(chan Event, 16)
	p, l, out := newTestPool(t, "pool-count", func(c *Config) {
		c.Policy = PolicyOptions{MinServers: 1, MaxServers: 2, MaxSpareServers: 1, MinChildTTL: time.Hour}
		c.MaxRequests = 3
		c.Observer = func(e Event) {
			if e.Kind == EventExit {
				select {
				case exits <- e:
				default:
				}
			}
		}
	})
	waitFor(t, "1 ready worker", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 1 })
	first := readyWorkers(status(t, p))[0]
	for i := range 3 {
		if pid := pidOnce(t, l.Addr); pid != first {
			t.Fatalf("request %d served by %d, want %d", i, pid, first)
		}
	}
	select {
	case e := <-exits:
		if e.PID != first || e.Cause != CauseReplaced || e.Requests != 3 {
			t.Fatalf("exit %+v; want pid %d replaced after 3 requests", e, first)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %d not replaced after 3 requests with max_requests = 3: %+v", first, status(t, p))
	}
	waitFor(t, "a ready replacement", 10*time.Second, func() bool { return len(readyWorkers(status(t, p))) == 1 })
	if pid := pidOnce(t, l.Addr); pid == first {
		t.Fatalf("the replaced worker %d still serves", pid)
	}
	waitFor(t, "4 requests counted", 5*time.Second, func() bool { return status(t, p).Requests == 4 })
	want := fmt.Sprintf("%d stdout max_requests=%q", first, "3")
	if lines := out.all(); !slices.Contains(lines, want) {
		t.Errorf("worker output %q; want %q", lines, want)
	}
}

// pidOnce connects to addr and returns the pid the pool-count worker sends.
func pidOnce(t *testing.T, addr net.Addr) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var pid int
	if _, err := fmt.Fscanln(c, &pid); err != nil {
		t.Fatalf("read pid: %v", err)
	}
	return pid
}

// TestPoolWorkerEnvMaxRequests: each worker learns its own limit, jitter
// included; an unlimited worker finds the variable unset, whatever the
// master's own environment holds.
func TestPoolWorkerEnvMaxRequests(t *testing.T) {
	t.Setenv(proto.EnvMaxRequests, "7") // the master itself runs under a master
	p, err := NewPool(Config{Name: "t", Command: []string{"w"}, Shim: []string{"shim"},
		Policy: PolicyOptions{MinServers: 1, MaxServers: 2, MaxSpareServers: 1}})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(env []string) []string {
		var got []string
		for _, kv := range env {
			if strings.HasPrefix(kv, proto.EnvMaxRequests+"=") {
				got = append(got, kv)
			}
		}
		return got
	}
	if got := lookup(p.workerEnv(0, 0)); len(got) != 0 {
		t.Errorf("unlimited worker's environment has %q", got)
	}
	if got := lookup(p.workerEnv(0, 1234)); !slices.Equal(got, []string{proto.EnvMaxRequests + "=1234"}) {
		t.Errorf("worker's environment has %q, want %s=1234 once", got, proto.EnvMaxRequests)
	}
}

// TestPoolWorkerEnvDaemonWins: a variable of the daemon's env replaces the
// master's own, once: the direct spawn passes the list to execve as it is,
// and a program reads the first of two.
func TestPoolWorkerEnvDaemonWins(t *testing.T) {
	t.Setenv("NSFD_TEST_WINS", "master")
	p, err := NewPool(Config{Name: "t", Command: []string{"w"}, Shim: []string{"shim"},
		Env:    []string{"NSFD_TEST_WINS=env_file", "NSFD_TEST_WINS=daemon"},
		Policy: PolicyOptions{MinServers: 1, MaxServers: 2, MaxSpareServers: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range p.workerEnv(0, 0) {
		if strings.HasPrefix(kv, "NSFD_TEST_WINS=") {
			got = append(got, kv)
		}
	}
	if !slices.Equal(got, []string{"NSFD_TEST_WINS=daemon"}) {
		t.Errorf("worker's environment has %q, want NSFD_TEST_WINS=daemon once", got)
	}
}

// TestPoolMaxRequestsJitter: a worker's limit is max_requests plus up to
// the jitter, and is what its environment says.
func TestPoolMaxRequestsJitter(t *testing.T) {
	p, _, out := newTestPool(t, "pool-count", func(c *Config) {
		c.Policy = PolicyOptions{MinServers: 4, MaxServers: 4, MaxSpareServers: 3, MinChildTTL: time.Hour}
		c.MaxRequests, c.MaxRequestsJitter = 10, 5
	})
	waitFor(t, "4 start lines", 10*time.Second, func() bool { return len(out.all()) >= 4 })
	var limits []int
	err := p.do(context.Background(), func() {
		for _, w := range p.workers {
			limits = append(limits, w.maxReq)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range out.all() {
		var pid, n int
		if _, err := fmt.Sscanf(line, "%d stdout max_requests=\"%d\"", &pid, &n); err != nil {
			t.Fatalf("worker output %q: %v", line, err)
		}
		if n < 10 || n > 15 {
			t.Errorf("worker %d has limit %d, want 10..15", pid, n)
		}
		if !slices.Contains(limits, n) {
			t.Errorf("worker %d was told %d; the pool's limits are %v", pid, n, limits)
		}
	}
}
