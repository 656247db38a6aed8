package prefork

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"weak"
)

// What a pool needs of a process backend (Procs), tested through the
// interface alone, so that every backend can run the same tests.

func init() {
	// procs-contract writes 300 lines to stdout, whether it leads its own
	// process group to stdout too, "bye" to stderr and "fd 3" to its fd 3,
	// then exits with status 7.
	testHelpers["procs-contract"] = func() {
		for i := range 300 {
			fmt.Printf("line %d\n", i)
		}
		if pgid, _ := syscall.Getpgid(0); pgid == os.Getpid() {
			fmt.Println("own group")
		} else {
			fmt.Printf("group %d, pid %d\n", pgid, os.Getpid())
		}
		os.NewFile(3, "fd3").WriteString("fd 3")
		fmt.Fprint(os.Stderr, "bye")
		os.Exit(7)
	}
}

// streams records the output a backend hands over, and what had arrived
// when each exit was reported.
type streams struct {
	mu     sync.Mutex
	out    map[string]*bytes.Buffer // "pid stream"
	made   int                      // writers asked for
	exits  int
	atExit map[int]string // pid -> its stdout when Exited was called
	exited chan *Process
}

func newStreams() *streams {
	return &streams{out: map[string]*bytes.Buffer{}, atExit: map[int]string{}, exited: make(chan *Process, 10)}
}

func (s *streams) output(pid int, stream string) io.WriteCloser {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &bytes.Buffer{}
	s.out[fmt.Sprint(pid, " ", stream)] = b
	s.made++
	return streamWriter{s, b}
}

func (s *streams) onExit(proc *Process) {
	s.mu.Lock()
	s.exits++
	s.atExit[proc.Pid] = s.out[fmt.Sprint(proc.Pid, " stdout")].String()
	s.mu.Unlock()
	s.exited <- proc
}

func (s *streams) get(pid int, stream string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.out[fmt.Sprint(pid, " ", stream)]; b != nil {
		return b.String()
	}
	return ""
}

type streamWriter struct {
	s *streams
	b *bytes.Buffer
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.b.Write(p)
}

func (w streamWriter) Close() error { return nil }

// testProcsContract checks procs against the contract of Procs.
func testProcsContract(t *testing.T, procs Procs) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	ctx := context.Background()

	t.Run("output before exit", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s := newStreams()
		proc, err := procs.Start(ctx, Command{
			Argv: []string{exe}, Env: append(env, "NSFD_TEST_HELPER=procs-contract"), Files: []*os.File{w},
			Output: s.output, Exited: s.onExit, Owner: t,
		})
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer procs.Drop(t)
		var exited *Process
		select {
		case exited = <-s.exited:
		case <-time.After(30 * time.Second):
			t.Fatal("no exit reported")
		}
		if exited.Pid != proc.Pid {
			t.Errorf("exit reported for pid %d, started %d", exited.Pid, proc.Pid)
		}
		var want strings.Builder
		for i := range 300 {
			fmt.Fprintf(&want, "line %d\n", i)
		}
		want.WriteString("own group\n")
		s.mu.Lock()
		atExit := s.atExit[proc.Pid]
		s.mu.Unlock()
		if atExit != want.String() {
			t.Errorf("when the exit was reported, stdout had %d bytes, ending %q; want %d bytes, ending in \"own group\"",
				len(atExit), atExit[max(0, len(atExit)-40):], want.Len())
		}
		st, err := exited.Wait() // reaped by the caller: at once, with its status
		if err != nil || st.ExitStatus() != 7 {
			t.Errorf("wait: %v, %v; want exit status 7", st, err)
		}
		got, _ := io.ReadAll(r)
		if string(got) != "fd 3" {
			t.Errorf("fd 3 of the process received %q, want the file given in Files", got)
		}
		waitFor(t, "stderr", 10*time.Second, func() bool { return s.get(proc.Pid, "stderr") == "bye" })
	})

	t.Run("stdin is the master's one /dev/null", func(t *testing.T) {
		// os/exec opens /dev/null for each process started without a
		// stdin: the backends pass the one the master opened once.
		f, err := devNull()
		if err != nil {
			t.Fatal(err)
		}
		s := newStreams()
		proc, err := procs.Start(ctx, Command{
			Argv: []string{"/bin/sleep", "1000"}, Env: env,
			Output: s.output, Exited: s.onExit, Owner: "stdin",
		})
		if err != nil {
			t.Fatal(err)
		}
		defer procs.Drop("stdin")
		defer func() {
			killGroup(proc.Pid)
			proc.Wait()
		}()
		same, err := sameOpenFile(proc.Pid, 0, int(f.Fd()))
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skip(err)
		}
		if err != nil || !same {
			t.Errorf("the worker's stdin is not the master's /dev/null (%v)", err)
		}
	})

	t.Run("drop reports no exit", func(t *testing.T) {
		s := newStreams()
		proc, err := procs.Start(ctx, Command{
			Argv: []string{exe}, Env: append(env, "NSFD_TEST_HELPER=pool-silent"),
			Output: s.output, Exited: s.onExit, Owner: "drop-me",
		})
		if err != nil {
			t.Fatal(err)
		}
		procs.Drop("drop-me")
		if err := killGroup(proc.Pid); err != nil {
			t.Fatal(err)
		}
		if _, err := proc.Wait(); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.exits != 0 {
			t.Errorf("the exit of a dropped process was reported")
		}
	})

	t.Run("failed start leaves nothing", func(t *testing.T) {
		s := newStreams()
		_, err := procs.Start(ctx, Command{
			Argv: []string{"/nonexistent/nsfd-worker"}, Env: env,
			Output: s.output, Exited: s.onExit, Owner: "failed",
		})
		if err == nil {
			t.Fatal("a program that does not exist started")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.made != 0 || s.exits != 0 {
			t.Errorf("after a failed start: %d writers asked for, %d exits reported; want none", s.made, s.exits)
		}
	})

	t.Run("keeps nothing of the command", func(t *testing.T) {
		// A backend holds what it needs of a running process, not the
		// Command: its environment and arguments are a master's largest
		// cost per worker (1000 workers kept ~2 MiB of them alive).
		envArr := new([256]string)
		n := copy(envArr[:], env)
		weakEnv := weak.Make(envArr)
		s := newStreams()
		proc, err := procs.Start(ctx, Command{
			Argv: []string{"/bin/sleep", "1000"}, Env: envArr[:n:n],
			Output: s.output, Exited: s.onExit, Owner: "keeps",
		})
		envArr = nil
		if err != nil {
			t.Fatal(err)
		}
		defer procs.Drop("keeps")
		defer func() {
			killGroup(proc.Pid)
			<-s.exited
			proc.Wait()
		}()
		waitFor(t, "the command's environment to be collected", 10*time.Second, func() bool {
			runtime.GC()
			return weakEnv.Value() == nil
		})
	})

	t.Run("context ended", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := procs.Start(cctx, Command{Argv: []string{exe}, Env: append(env, "NSFD_TEST_HELPER=pool-silent"), Exited: func(*Process) {}}); err == nil {
			t.Fatal("started with an ended context")
		}
	})
}
