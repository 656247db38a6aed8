package prefork

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseProcStat(t *testing.T) {
	tail := " 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0"
	for _, tc := range []struct {
		in    string
		ppid  int
		start uint64
		bad   bool
	}{
		{in: "42 (sh) S 7 42 42 0 -1 4194304" + tail, ppid: 7, start: 98765},
		{in: "42 (a b) c) R 9 42 42 0 -1 4194304" + tail, ppid: 9, start: 98765}, // a name with spaces and ')'
		{in: "42 (sh) Z 1 42 42 0 -1 4194304" + tail, ppid: 1, start: 98765},
		{in: "42 (sh) S 7", bad: true},
		{in: "42 sh S 7 42", bad: true},
		{in: "", bad: true},
		{in: "42 (sh) S x 42 42 0 -1 4194304" + tail, bad: true},
	} {
		ppid, start, err := parseProcStat([]byte(tc.in))
		if tc.bad != (err != nil) || ppid != tc.ppid || start != tc.start {
			t.Errorf("%q: %d %d %v", tc.in, ppid, start, err)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	for in, want := range map[string]string{
		"0::/nsfd/1/web/w1\n":                       "/nsfd/1/web/w1",
		"4:memory:/x\n1:cpu:/\n0::/nsfd/1/web/w1\n": "/nsfd/1/web/w1",
		"12:pids:/\n":                               "",
		"0::/\n":                                    "/",
		"0::/a:b/c\n":                               "/a:b/c",
		"":                                          "",
		"9:name=systemd:/\n0::/user.slice/x.scope": "/user.slice/x.scope",
	} {
		if got := parseProcCgroup([]byte(in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestProcDirReadsThisProcess(t *testing.T) {
	ppid, start, err := procFS.stat(os.Getpid())
	if err != nil || ppid != os.Getppid() || start == 0 {
		t.Fatalf("stat(self) = %d %d %v, want parent %d", ppid, start, err, os.Getppid())
	}
	if _, err := procFS.cgroup(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyBarrier: a descriptor passed with BARRIER=1 is held until the
// note is handled, then closed, so that systemd-notify (which waits on it)
// is still alive while its READY=1 is attributed; one passed with anything
// else is closed at once.
func TestNotifyBarrier(t *testing.T) {
	t.Parallel()
	ns, err := listenNotify(filepath.Join(t.TempDir(), "n.sock"), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { close(done); ns.close() }()
	go ns.read(done)
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	send := func(msg string) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Sendmsg(c, []byte(msg), unix.UnixRights(int(w.Fd())), &unix.SockaddrUnix{Name: ns.path}, 0); err != nil {
			t.Fatal(err)
		}
		w.Close()
		return r
	}
	eof := func(r *os.File) bool { // the write end is closed everywhere
		fds := []unix.PollFd{{Fd: int32(r.Fd()), Events: unix.POLLIN}}
		n, _ := unix.Poll(fds, 0)
		return n == 1 && fds[0].Revents&unix.POLLHUP != 0
	}
	other := send("STATUS=x")
	barrier := send("BARRIER=1")
	defer other.Close()
	defer barrier.Close()
	var notes []note
	deadline := time.Now().Add(5 * time.Second)
	for len(notes) < 2 && time.Now().Before(deadline) {
		select {
		case <-ns.ready():
			notes = append(notes, ns.take(false)...)
		case <-time.After(time.Until(deadline)):
		}
	}
	if len(notes) != 2 || !notes[1].msg.Barrier || notes[1].barrier == nil || notes[0].barrier != nil {
		t.Fatalf("notes %+v", notes)
	}
	if !eof(other) {
		t.Error("a descriptor passed with STATUS= was kept")
	}
	if eof(barrier) {
		t.Fatal("the barrier was released before its note was handled")
	}
	notes[1].release()
	if !eof(barrier) {
		t.Fatal("the barrier was not released with its note")
	}
}
