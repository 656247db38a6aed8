package prefork

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wtNotifyPair is a master's notify socket and a worker's end of it.
func wtNotifyPair(t *testing.T) (*notifySocket, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "n.sock")
	ns, err := listenNotify(path, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.close() })
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ns, c
}

// burstMsg is the i-th datagram of a burst: every 7th one oversized.
func burstMsg(i int) []byte {
	if i%7 == 3 {
		return []byte("STATUS=" + strings.Repeat("x", 5000))
	}
	return fmt.Appendf(nil, "BUSY=%d\nREQUESTS=%d", i%2, i)
}

// A burst of datagrams, larger than the kernel's queue, is all read, in
// order, each with the sender's pid; the oversized ones are dropped as
// malformed, the others parsed.
func TestNotifySocketReadsABurst(t *testing.T) {
	t.Parallel()
	ns, c := wtNotifyPair(t)
	done := make(chan struct{})
	defer close(done)
	go ns.read(done)
	const total = 500
	sent := make(chan error, 1)
	go func() {
		for i := range total {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(burstMsg(i)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	var notes []note
	deadline := time.After(10 * time.Second)
	for len(notes) < total {
		select {
		case <-ns.ready():
			notes = append(notes, ns.take(false)...)
		case err := <-sent:
			if err != nil {
				t.Fatal(err)
			}
			sent = nil
		case <-deadline:
			t.Fatalf("read %d of %d datagrams", len(notes), total)
		}
	}
	if len(notes) != total {
		t.Fatalf("read %d datagrams, sent %d", len(notes), total)
	}
	malformed, requests, wantMalformed := 0, 0, 0
	for i, nt := range notes {
		if i%7 == 3 {
			wantMalformed++
			if !errors.Is(nt.err, ErrMalformed) {
				t.Fatalf("datagram %d (oversized): %+v, want malformed", i, nt)
			}
			malformed++
			continue
		}
		if nt.err != nil || nt.pid != os.Getpid() {
			t.Fatalf("datagram %d: %+v, want a note from pid %d", i, nt, os.Getpid())
		}
		if !nt.msg.HasRequests || nt.msg.Requests != i || nt.msg.Busy != i%2 {
			t.Fatalf("datagram %d out of order or misread: %+v", i, nt.msg)
		}
		requests++
	}
	if malformed != wantMalformed || requests+malformed != total {
		t.Errorf("%d malformed, %d good of %d", malformed, requests, total)
	}
}

// A queue the kernel holds is read in one recvmmsg call per batch: a
// short batch ends the read without a further call told EAGAIN.
func TestNotifySocketBatchesReads(t *testing.T) {
	t.Parallel()
	ns, c := wtNotifyPair(t)
	const queued = 8 // within the smallest max_dgram_qlen (10)
	for i := range queued {
		if _, err := c.Write(burstMsg(2 * i)); err != nil {
			t.Fatal(err)
		}
	}
	notes := ns.take(true)
	if len(notes) != queued {
		t.Fatalf("took %d notes, want %d", len(notes), queued)
	}
	if ns.batch.calls != 1 {
		t.Errorf("%d recvmmsg calls for %d datagrams, want 1", ns.batch.calls, queued)
	}
	if again := ns.take(true); len(again) != 0 || ns.batch.calls != 2 {
		t.Errorf("an empty queue: %d notes, %d calls", len(again), ns.batch.calls)
	}
}
