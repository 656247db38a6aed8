package prefork

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListenWaitParksOnThePoller: a dormant daemon's listener watch waits
// on the runtime's poller, not in a thread of its own, on sockets in
// blocking mode as the master holds them (and leaves them so); it sees a
// client without taking it, and ends when told to.
func TestListenWaitParksOnThePoller(t *testing.T) {
	const n = 40
	stop := make(chan struct{})
	results := make(chan bool, n)
	var ls []*net.TCPListener
	threads := threadCount(t)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, l.(*net.TCPListener))
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd()) // blocking mode, as the master's copy
		go func() {
			ready, err := listenWait(context.Background(), []int{fd}, stop)
			if err != nil {
				t.Error(err)
			}
			results <- ready
		}()
	}
	// For a while, as they park: a wait in poll(2) would hold a thread each.
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if grown := threadCount(t) - threads; grown >= n/2 {
			t.Fatalf("%d threads more while %d listeners are watched", grown, n)
		}
	}
	c, err := net.Dial("tcp", ls[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case ready := <-results:
		if !ready {
			t.Fatal("a watch ended without a client")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting client was not seen")
	}
	ls[0].SetDeadline(time.Now().Add(5 * time.Second))
	a, err := ls[0].Accept()
	if err != nil {
		t.Fatalf("the client was taken by the watch: %v", err)
	}
	a.Close()
	f, _ := ls[1].File()
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("the socket's flags %#x (%v): the watch made it non-blocking", fl, err)
	}
	f.Close()
	close(stop)
	for range n - 1 {
		select {
		case ready := <-results:
			if ready {
				t.Error("a watch without a client said ready")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a watch did not end when told to")
		}
	}
}

// threadCount is this process's number of threads.
func threadCount(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no thread count")
	return 0
}
