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
// WT_CORES; each connection is answered with the worker's GOMAXPROCS.
func helperWorkerServeCores() {
	n, _ := strconv.Atoi(os.Getenv("WT_CORES"))
	err := (&Server{Cores: n, Handler: HandlerFunc(func(ctx context.Context, c net.Conn) {
		fmt.Fprintf(c, "%d\n", runtime.GOMAXPROCS(0))
	})}).Serve(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// TestWorkerServeRunsOnOneCore: a worker of a pool runs its Go code on one
// core unless told otherwise (Server.Cores, or GOMAXPROCS in its
// environment, which wins).
func TestWorkerServeRunsOnOneCore(t *testing.T) {
	runtimeDefault := runtime.GOMAXPROCS(0) // what a process of this machine picks by itself
	if os.Getenv("GOMAXPROCS") != "" {
		runtimeDefault = 0 // unknown: the test binary was given one
	}
	for _, tc := range []struct {
		name string
		env  []string
		want int
	}{
		{"default", nil, 1},
		{"Cores 3", []string{"WT_CORES=3"}, 3},
		{"GOMAXPROCS wins", []string{"WT_CORES=3", "GOMAXPROCS=5"}, 5},
		{"GOMAXPROCS over the default", []string{"GOMAXPROCS=4"}, 4},
		{"negative Cores keeps the runtime's choice", []string{"WT_CORES=-1"}, runtimeDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == 0 {
				t.Skip("GOMAXPROCS is set for the test binary: the runtime's own choice is unknown")
			}
			l := wtTCPListener(t)
			wtStartHelper(t, "worker-serve-cores", []*os.File{wtInheritable(t, l)}, true, append(tc.env, "LISTEN_FDS=1")...)
			c := wtDial(t, "tcp", l.Addr().String())
			c.answer(t, strconv.Itoa(tc.want))
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
}
