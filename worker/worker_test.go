package worker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The worker-side tests run the test binary as a real worker (NSFD_TEST_HELPER,
// see main_test.go) with real sockets as fds 3.., and read what it sends on a
// real NOTIFY_SOCKET: no master involved.
func init() {
	testHelpers["worker-files"] = helperWorkerFiles
	testHelpers["worker-serve"] = helperWorkerServe
}

// wtFilesReport is what the worker-files helper prints as JSON.
type wtFilesReport struct {
	Names       []string
	Same        bool // a second Files call returned the same files
	Cloexec     []bool
	Listeners   int
	PacketConns int
	Env         []string // LISTEN_* left in the environment
	Err         string
}

func helperWorkerFiles() {
	var rep wtFilesReport
	files, err := Files()
	if err != nil {
		rep.Err = err.Error()
	}
	again, _ := Files()
	rep.Same = len(files) == len(again)
	for i, f := range files {
		rep.Names = append(rep.Names, f.Name())
		rep.Same = rep.Same && again[i] == f
		flags, _ := unix.FcntlInt(uintptr(ListenFDsStart+i), unix.F_GETFD, 0)
		rep.Cloexec = append(rep.Cloexec, flags&unix.FD_CLOEXEC != 0)
	}
	ls, err := Listeners()
	if err != nil {
		rep.Err = err.Error()
	}
	pcs, err := PacketConns()
	if err != nil {
		rep.Err = err.Error()
	}
	rep.Listeners, rep.PacketConns = len(ls), len(pcs)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LISTEN_") {
			rep.Env = append(rep.Env, kv)
		}
	}
	json.NewEncoder(os.Stdout).Encode(rep)
}

// wtInheritable returns a copy of a socket's fd to pass in ExtraFiles. It is
// made with os.NewFile, not the listener's File method, whose Fd (which
// os/exec calls) would put the shared socket in blocking mode.
func wtInheritable(tb testing.TB, s syscall.Conn) *os.File {
	tb.Helper()
	rc, err := s.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		tb.Fatal(err)
	}
	if derr != nil {
		tb.Fatal(derr)
	}
	f := os.NewFile(uintptr(nfd), "inherit")
	tb.Cleanup(func() { f.Close() })
	return f
}

// wtSockDir returns a directory for socket files whose paths stay within
// the 104 bytes sun_path allows everywhere.
func wtSockDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if len(dir) > 80 {
		d, err := os.MkdirTemp("", "nsfd")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	return dir
}

// wtNotes is the master's end of NOTIFY_SOCKET in a test.
type wtNotes struct {
	path string
	conn *net.UnixConn
}

func wtListenNotify(tb testing.TB) *wtNotes {
	tb.Helper()
	path := filepath.Join(wtSockDir(tb), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &wtNotes{path: path, conn: c}
}

// next returns the next datagram, failing the test after 5s.
func (n *wtNotes) next(tb testing.TB) string {
	tb.Helper()
	buf := make([]byte, MaxNotifySize+1)
	n.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		tb.Fatalf("waiting for a notify datagram: %v", err)
	}
	return string(buf[:k])
}

// expect reads datagrams and fails unless they are want, in order.
// Watchdog pings and bare REQUESTS=n reports (periodic, as pings are) are
// skipped unless want is one.
func (n *wtNotes) expect(tb testing.TB, want ...string) {
	tb.Helper()
	for _, w := range want {
		got := n.next(tb)
		for wtPeriodic(got) && !wtPeriodic(w) {
			got = n.next(tb)
		}
		if got != w {
			tb.Fatalf("notify: got %q, want %q (sequence %q)", got, w, want)
		}
	}
}

// wtPeriodic reports whether a datagram is a watchdog ping or a bare
// REQUESTS=n report.
func wtPeriodic(msg string) bool {
	return msg == NotifyWatchdog || strings.HasPrefix(msg, NotifyRequests) && !strings.Contains(msg, "\n")
}

// wtBusy, wtIdle and wtStopping are what Serve and Load send: the word with
// the count of requests.
func wtBusy(n int) string     { return NotifyBusy + "\n" + NotifyRequests + strconv.Itoa(n) }
func wtIdle(n int) string     { return NotifyIdle + "\n" + NotifyRequests + strconv.Itoa(n) }
func wtStopping(n int) string { return NotifyStopping + "\n" + NotifyRequests + strconv.Itoa(n) }

// expectNone fails if a datagram other than a watchdog ping or a bare
// REQUESTS=n report is queued.
func (n *wtNotes) expectNone(tb testing.TB) {
	tb.Helper()
	for {
		msg, ok := n.try(tb)
		if !ok {
			return
		}
		if !wtPeriodic(msg) {
			tb.Fatalf("unexpected notify datagram %q", msg)
		}
	}
}

// try returns the datagram queued, if any, without waiting. (A read
// deadline in the past would not do: the read then fails without looking.)
func (n *wtNotes) try(tb testing.TB) (string, bool) {
	tb.Helper()
	rc, err := n.conn.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, MaxNotifySize+1)
	var (
		k    int
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		for {
			k, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if rerr != unix.EINTR {
				return true // never wait
			}
		}
	})
	switch {
	case err != nil:
		tb.Fatal(err)
	case rerr == unix.EAGAIN:
		return "", false
	case rerr != nil:
		tb.Fatal(rerr)
	}
	return string(buf[:k]), true
}

// wtProc is a worker process started by a test.
type wtProc struct {
	cmd    *exec.Cmd
	stdout chan string // lines
	stderr bytes.Buffer
	done   chan error // Wait's result
}

// wtStart starts argv with files as fds 3.. and env added to a clean
// environment. With setPID, it goes through sh, which sets LISTEN_PID to the
// worker's own pid and execs it, as the master's exec shim does.
func wtStart(tb testing.TB, argv []string, files []*os.File, setPID bool, env ...string) *wtProc {
	tb.Helper()
	if setPID {
		argv = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`}, argv...)
	}
	p := &wtProc{cmd: exec.Command(argv[0], argv[1:]...), stdout: make(chan string, 100), done: make(chan error, 1)}
	// GORACE: a race-enabled helper would otherwise linger a second at exit.
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GORACE=atexit_sleep_ms=0"}, env...)
	p.cmd.ExtraFiles = files
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.stdout <- sc.Text()
		}
		close(p.stdout)
		p.done <- p.cmd.Wait()
	}()
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func wtStartHelper(tb testing.TB, helper string, files []*os.File, setPID bool, env ...string) *wtProc {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return wtStart(tb, []string{exe}, files, setPID, append(env, "NSFD_TEST_HELPER="+helper)...)
}

// line returns the next line of the worker's stdout.
func (p *wtProc) line(tb testing.TB) string {
	tb.Helper()
	select {
	case l, ok := <-p.stdout:
		if !ok {
			tb.Fatalf("worker closed stdout; stderr: %s", p.stderr.String())
		}
		return l
	case <-time.After(5 * time.Second):
		tb.Fatal("timed out waiting for the worker's output")
	}
	return ""
}

// wait waits for the worker to exit and fails unless it exits 0.
func (p *wtProc) wait(tb testing.TB) {
	tb.Helper()
	for range p.stdout {
	}
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		if err != nil {
			tb.Fatalf("worker: %v; stderr: %s", err, p.stderr.String())
		}
	case <-time.After(5 * time.Second):
		tb.Fatalf("worker did not exit; stderr: %s", p.stderr.String())
	}
}

func (p *wtProc) signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatal(err)
	}
}

func TestWorkerParseListenEnv(t *testing.T) {
	const pid = 4242
	for _, tc := range []struct {
		name               string
		fds, lpid, fdnames string
		wantN              int
		wantNames          []string
		wantErr            bool
	}{
		{name: "unset"},
		{name: "empty pid accepted", fds: "2", wantN: 2, wantNames: []string{"LISTEN_FD_3", "LISTEN_FD_4"}},
		{name: "our pid", fds: "1", lpid: "4242", fdnames: "web", wantN: 1, wantNames: []string{"web"}},
		{name: "other pid", fds: "1", lpid: "4243"},
		{name: "zero", fds: "0", lpid: "4242"},
		{name: "some names", fds: "3", fdnames: "a::c:d", wantN: 3, wantNames: []string{"a", "LISTEN_FD_4", "c"}},
		{name: "bad fds", fds: "x", wantErr: true},
		{name: "negative fds", fds: "-1", wantErr: true},
		{name: "huge fds", fds: "100000", wantErr: true},
		{name: "bad pid", fds: "1", lpid: "me", wantErr: true},
		{name: "bad pid wins over mismatch", fds: "1", lpid: "0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, names, err := parseListenEnv(tc.fds, tc.lpid, tc.fdnames, pid)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if n != tc.wantN || !slices.Equal(names, tc.wantNames) {
				t.Fatalf("got %d %q, want %d %q", n, names, tc.wantN, tc.wantNames)
			}
		})
	}
}

func TestWorkerParseWatchdogEnv(t *testing.T) {
	const pid = 4242
	for _, tc := range []struct {
		usec, wpid string
		want       time.Duration
		wantErr    bool
	}{
		{},
		{usec: "20000", want: 20 * time.Millisecond},
		{usec: "20000", wpid: "4242", want: 20 * time.Millisecond},
		{usec: "20000", wpid: "1"},
		{usec: "0"},
		{usec: "soon", wantErr: true},
		{usec: "-5", wantErr: true},
		{usec: "20000", wpid: "x", wantErr: true},
	} {
		got, err := parseWatchdogEnv(tc.usec, tc.wpid, pid)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("parseWatchdogEnv(%q, %q) = %v, %v; want %v, error %v", tc.usec, tc.wpid, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestWorkerFilesInherited(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	up, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ul, err := net.Listen("unix", filepath.Join(wtSockDir(t), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	files := []*os.File{
		wtInheritable(t, tl.(*net.TCPListener)),
		wtInheritable(t, up.(*net.UDPConn)),
		pr, // not a socket: skipped
		wtInheritable(t, ul.(*net.UnixListener)),
	}

	for _, tc := range []struct {
		name   string
		setPID bool
		env    []string
		want   wtFilesReport
	}{
		{
			name: "LISTEN_PID is ours", setPID: true,
			env: []string{"LISTEN_FDS=4", "LISTEN_FDNAMES=web:dns:pipe:sock"},
			want: wtFilesReport{Names: []string{"web", "dns", "pipe", "sock"}, Same: true,
				Cloexec: []bool{true, true, true, true}, Listeners: 2, PacketConns: 1},
		},
		{
			name: "LISTEN_PID unset",
			env:  []string{"LISTEN_FDS=2"},
			want: wtFilesReport{Names: []string{"LISTEN_FD_3", "LISTEN_FD_4"}, Same: true,
				Cloexec: []bool{true, true}, Listeners: 1, PacketConns: 1},
		},
		{
			name: "LISTEN_PID is another process",
			env:  []string{"LISTEN_FDS=4", fmt.Sprintf("LISTEN_PID=%d", os.Getpid()), "LISTEN_FDNAMES=a:b:c:d"},
			want: wtFilesReport{Same: true},
		},
		{
			name: "no LISTEN_FDS",
			want: wtFilesReport{Same: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wtStartHelper(t, "worker-files", files, tc.setPID, tc.env...)
			var got wtFilesReport
			if err := json.Unmarshal([]byte(p.line(t)), &got); err != nil {
				t.Fatal(err)
			}
			p.wait(t)
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if !bytes.Equal(gj, wj) {
				t.Fatalf("got  %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestWorkerFilesNotInheritedHere(t *testing.T) {
	if os.Getenv(EnvListenFDs) != "" {
		t.Skip("the test process itself inherited listeners")
	}
	files, err := Files()
	if err != nil || len(files) != 0 {
		t.Fatalf("Files() = %v, %v; want none", files, err)
	}
	ls, err := Listeners()
	if err != nil || len(ls) != 0 {
		t.Fatalf("Listeners() = %v, %v; want none", ls, err)
	}
}
