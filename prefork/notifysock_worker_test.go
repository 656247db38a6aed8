//go:build unix

package prefork

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWorkerSocketsNameTheSender: on a system without SO_PASSCRED each
// worker has a socket of its own; its datagrams count for its pid, those
// sent before the pid was known too, and its socket goes once it is reaped.
func TestWorkerSocketsNameTheSender(t *testing.T) {
	t.Parallel()
	s, err := listenWorkerSockets(filepath.Join(t.TempDir(), "d.notify"), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	send := func(path, msg string) {
		t.Helper()
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	pathA, attachA := s.endpoint()
	pathB, attachB := s.endpoint()
	if pathA == pathB {
		t.Fatalf("two workers share the socket %s", pathA)
	}
	if st, err := os.Stat(pathA); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s: %v, %v; want mode 0600", pathA, st, err)
	}
	if err := s.own(os.Geteuid(), os.Getegid()); err != nil { // a reload that keeps the user
		t.Fatal(err)
	}
	send(pathA, "READY=1")    // before the pid is known
	send(pathB, "STOPPING=1") // never attached: the worker did not start
	attachB(0)
	attachA(100)
	send(pathA, "STATUS=serving")

	var notes []note
	deadline := time.Now().Add(10 * time.Second)
	for len(notes) < 2 && time.Now().Before(deadline) {
		select {
		case <-s.ready():
		case <-time.After(100 * time.Millisecond):
		}
		notes = append(notes, s.take(true)...)
	}
	if len(notes) != 2 || notes[0].pid != 100 || !notes[0].msg.Ready || notes[1].pid != 100 || notes[1].msg.Status != "serving" {
		t.Fatalf("notes %+v; want READY=1 then STATUS=serving, both from pid 100", notes)
	}
	if _, err := os.Stat(pathB); !os.IsNotExist(err) {
		t.Errorf("the socket of a worker that did not start is still there: %v", err)
	}
	s.release(100)
	if _, err := os.Stat(pathA); !os.IsNotExist(err) {
		t.Errorf("the socket of a reaped worker is still there: %v", err)
	}
}
