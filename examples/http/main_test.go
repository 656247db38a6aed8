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

	"github.com/nsfd/nsfd/prefork"
)

// TestBusyPerConnection: with one slot, each connection is a BUSY=1/BUSY=0
// pair, and a second connection waits until the first one is closed.
func TestBusyPerConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	notes, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	t.Setenv(prefork.EnvNotifySocket, path)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	srv.Listener = &limitListener{Listener: srv.Listener, slots: newSlots(1)}
	srv.Start()
	defer srv.Close()

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
	buf := make([]byte, prefork.MaxNotifySize)
	var got []string
	for len(got) < 6 {
		notes.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := notes.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	if want := "BUSY=1 BUSY=0 BUSY=1 BUSY=0 BUSY=1 BUSY=0"; strings.Join(got, " ") != want {
		t.Fatalf("notify %q, want %s", got, want)
	}
}
