package worker

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
)

func init() {
	testHelpers["worker-serve-cores"] = helperWorkerServeCores
}

// helperWorkerServeCores is a worker built on Serve with Cores from
// WT_CORES; each connection is answered with the worker's GOMAXPROCS
// before Serve and now.
func helperWorkerServeCores() {
	n, _ := strconv.Atoi(os.Getenv("WT_CORES"))
	before := runtime.GOMAXPROCS(0)
	err := (&Server{Cores: n, Handler: HandlerFunc(func(ctx context.Context, c net.Conn) {
		fmt.Fprintf(c, "%d %d\n", before, runtime.GOMAXPROCS(0))
	})}).Serve(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// TestWorkerServeRunsOnOneCore: a worker an nsfd master started runs its
// Go code on one core unless told otherwise (Server.Cores, or GOMAXPROCS
// in its environment, which wins); a process that merely inherited
// sockets (systemd's socket activation) keeps the runtime's choice.
func TestWorkerServeRunsOnOneCore(t *testing.T) {
	const kept = -1 // want: what the runtime chose
	for _, tc := range []struct {
		name string
		env  []string
		want int
	}{
		{"default", []string{"NSFD_DAEMON=d"}, 1},
		{"not under nsfd", nil, kept},
		{"Cores 3", []string{"NSFD_DAEMON=d", "WT_CORES=3"}, 3},
		{"Cores 3, not under nsfd", []string{"WT_CORES=3"}, 3},
		{"GOMAXPROCS wins", []string{"NSFD_DAEMON=d", "WT_CORES=3", "GOMAXPROCS=5"}, 5},
		{"GOMAXPROCS over the default", []string{"NSFD_DAEMON=d", "GOMAXPROCS=4"}, 4},
		{"invalid GOMAXPROCS", []string{"NSFD_DAEMON=d", "GOMAXPROCS=auto"}, 1},
		{"negative Cores keeps the runtime's choice", []string{"NSFD_DAEMON=d", "WT_CORES=-1"}, kept},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := wtTCPListener(t)
			wtStartHelper(t, "worker-serve-cores", []*os.File{wtInheritable(t, l)}, true, append(tc.env, "LISTEN_FDS=1")...)
			c := wtDial(t, "tcp", l.Addr().String())
			line, err := c.r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			var before, now int
			if _, err := fmt.Sscan(line, &before, &now); err != nil {
				t.Fatalf("worker answered %q: %v", line, err)
			}
			want := tc.want
			if want == kept {
				want = before
			}
			if now != want {
				t.Errorf("GOMAXPROCS %d while serving (%d before Serve), want %d", now, before, want)
			}
		})
	}
}

// TestServeOnGivenListenersKeepsCores: a Serve on listeners of its own is
// not a pool's worker, and leaves the process's GOMAXPROCS alone.
func TestServeOnGivenListenersKeepsCores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	l := wtTCPListener(t)
	_, stop := wtServe(t, &Server{Handler: HandlerFunc(func(ctx context.Context, c net.Conn) { io.WriteString(c, "hi\n") }), Listeners: []net.Listener{l}})
	c := wtDial(t, "tcp", l.Addr().String())
	c.answer(t, "hi")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Errorf("GOMAXPROCS %d after Serve on given listeners, want 3 (left alone)", n)
	}
}

func TestUseCores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	t.Setenv(EnvDaemon, "")
	runtime.GOMAXPROCS(3)
	if n := UseCores(0); n != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("outside nsfd, UseCores(0) = %d, GOMAXPROCS %d; want both left at 3", n, runtime.GOMAXPROCS(0))
	}
	t.Setenv(EnvDaemon, "d")
	if n := UseCores(0); n != DefaultCores || runtime.GOMAXPROCS(0) != DefaultCores {
		t.Errorf("UseCores(0) = %d, GOMAXPROCS %d; want %d", n, runtime.GOMAXPROCS(0), DefaultCores)
	}
	if n := UseCores(2); n != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("UseCores(2) = %d, GOMAXPROCS %d; want 2", n, runtime.GOMAXPROCS(0))
	}
	if n := UseCores(-1); n != 2 {
		t.Errorf("UseCores(-1) = %d, want the value in effect, 2", n)
	}
	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(3)
	if n := UseCores(1); n != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("with GOMAXPROCS in the environment, UseCores(1) = %d, GOMAXPROCS %d; want both left at 3", n, runtime.GOMAXPROCS(0))
	}
	t.Setenv("GOMAXPROCS", "0") // invalid: the runtime ignored it
	if n := UseCores(1); n != 1 {
		t.Errorf("with GOMAXPROCS=0 in the environment, UseCores(1) = %d, want 1", n)
	}
}
