package worker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWorkerNotifyWithoutSocket(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	wtFreshDefaultLoad(t)
	for _, f := range []func() error{
		func() error { return Notify(NotifyReady) },
		Busy,
		Idle,
		Stopping,
		func() error { return Notify(strings.Repeat("x", 2*MaxNotifySize)) },
	} {
		if err := f(); err != nil {
			t.Fatalf("without NOTIFY_SOCKET: %v, want nil", err)
		}
	}
}

func TestWorkerNotifyDatagrams(t *testing.T) {
	notes := wtListenNotify(t)
	t.Setenv(EnvNotifySocket, notes.path)
	wtFreshDefaultLoad(t)

	for _, tc := range []struct {
		send func() error
		want string
	}{
		{func() error { return Notify(NotifyReady) }, "READY=1"},
		{func() error { return Notify(NotifyReady, NotifyStatus+"warming up") }, "READY=1\nSTATUS=warming up"},
		{Busy, "BUSY=1\nREQUESTS=1"},
		{Idle, "BUSY=0\nREQUESTS=1"}, // after the idle grace
		{Busy, "BUSY=1\nREQUESTS=2"},
		{Stopping, "STOPPING=1\nREQUESTS=2"},
		{func() error { return Notify(strings.Repeat("x", MaxNotifySize)) }, strings.Repeat("x", MaxNotifySize)},
	} {
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		notes.expect(t, tc.want)
	}
	if err := Notify(NotifyStatus + strings.Repeat("x", MaxNotifySize)); !errors.Is(err, ErrNotifyTooLarge) {
		t.Fatalf("oversized message: %v, want ErrNotifyTooLarge", err)
	}
	if err := Notify(); err != nil {
		t.Fatalf("no state: %v", err)
	}
	notes.expectNone(t)

	// The master's socket is replaced (it restarted the pool): Notify dials again.
	notes.conn.Close()
	os.Remove(notes.path)
	again := wtListenNotify(t)
	os.Rename(again.path, notes.path)
	again.path = notes.path
	if err := Notify(NotifyWatchdog); err != nil {
		t.Fatalf("after the socket was replaced: %v", err)
	}
	again.expect(t, NotifyWatchdog)

	// No socket at all any more: an error, not a hang.
	again.conn.Close()
	os.Remove(notes.path)
	if err := Notify(NotifyWatchdog); err == nil {
		t.Fatal("Notify to a removed socket succeeded")
	}
}

func TestWorkerNotifyAbstractSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract sockets are Linux's")
	}
	name := fmt.Sprintf("@nsfd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv(EnvNotifySocket, name)
	if err := Notify(NotifyReady); err != nil {
		t.Fatal(err)
	}
	(&wtNotes{conn: c}).expect(t, NotifyReady)
}

func TestWorkerNotifyQueueFull(t *testing.T) {
	notes := wtListenNotify(t) // never read until the end
	t.Setenv(EnvNotifySocket, notes.path)
	old := notifySendTimeout
	notifySendTimeout = 20 * time.Millisecond
	defer func() { notifySendTimeout = old }()

	start := time.Now()
	var err error
	for i := 0; i < 100000 && err == nil; i++ {
		err = Notify(NotifyBusy)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Notify to a full queue: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Notify took %v to give up", d)
	}
	notes.expect(t, NotifyBusy) // the queue drains and Notify works again
	if err := Notify(NotifyIdle); err != nil {
		t.Fatal(err)
	}
}

func TestWorkerNotifyConcurrent(t *testing.T) {
	notes := wtListenNotify(t)
	t.Setenv(EnvNotifySocket, notes.path)
	const senders, each = 8, 50
	got := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, MaxNotifySize)
		for n < senders*each {
			notes.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := notes.conn.Read(buf); err != nil {
				break
			}
			n++
		}
		got <- n
	}()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for range each {
				if err := Notify(NotifyBusy); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := <-got; n != senders*each {
		t.Fatalf("received %d datagrams, want %d", n, senders*each)
	}
}

// wtFreshDefaultLoad gives Busy, Idle and Stopping a new Load for the test.
func wtFreshDefaultLoad(t *testing.T) {
	t.Helper()
	old := defaultLoad
	defaultLoad = &Load{Concurrency: 1}
	t.Cleanup(func() {
		defaultLoad.Close()
		defaultLoad = old
	})
}
