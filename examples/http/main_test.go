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

func TestBusyPerRequest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	notes, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	t.Setenv(prefork.EnvNotifySocket, path)

	busy := &busyCounter{limit: 1}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	srv.Config.ConnState = busy.connState
	srv.Start()
	defer srv.Close()

	client := srv.Client() // keep-alive: one connection, two requests
	for range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	buf := make([]byte, prefork.MaxNotifySize)
	var got []string
	for len(got) < 4 {
		notes.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := notes.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	if want := "BUSY=1 BUSY=0 BUSY=1 BUSY=0"; strings.Join(got, " ") != want {
		t.Fatalf("notify %q, want %s", got, want)
	}
}
