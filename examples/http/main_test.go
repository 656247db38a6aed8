package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/worker"
)

// TestBusyPerConnection: with one slot, each connection is a request,
// reported as BUSY=1 and, once the connection is closed, BUSY=0 with the
// count; a second connection waits until the first one is closed. With an
// idle grace, back-to-back connections make one BUSY=1/BUSY=0 pair.
func TestBusyPerConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		want  string
	}{
		{"at once", -1, "BUSY=1\nREQUESTS=1 BUSY=0\nREQUESTS=1 BUSY=1\nREQUESTS=2 BUSY=0\nREQUESTS=2 BUSY=1\nREQUESTS=3 BUSY=0\nREQUESTS=3"},
		{"coalesced", time.Hour, "BUSY=1\nREQUESTS=1 BUSY=0\nREQUESTS=3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "n.sock")
			notes, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer notes.Close()
			t.Setenv(worker.EnvNotifySocket, path)
			t.Setenv(worker.EnvMaxRequests, "")

			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok\n")
			}))
			sl := newSlots(1)
			sl.load.IdleGrace = tc.grace
			srv.Listener = &limitListener{Listener: srv.Listener, slots: sl}
			srv.Start()

			// A new connection per request, as DisableKeepAlives does.
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			for range 3 {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			srv.Close() // waits for the connections to close
			if err := sl.load.Close(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, worker.MaxNotifySize)
			var got []string
			for n := strings.Count(tc.want, " ") + 1; len(got) < n; {
				notes.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := notes.Read(buf)
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				got = append(got, string(buf[:n]))
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("notify %q, want %q", got, tc.want)
			}
		})
	}
}
