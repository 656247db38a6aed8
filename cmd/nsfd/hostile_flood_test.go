//go:build linux

package main

// End-to-end tests of a hostile runtime (issue 12, part B), the floods: of
// connections, of notify datagrams, and of pings while the master is
// stopped.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/remote"
)

// startLimited starts `nsfd run` with a descriptor limit of nofile (soft
// and hard), as a small VM or a tight systemd unit would give it.
func (e *env) startLimited(nofile int) *master {
	e.t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "ulimit -n "+strconv.Itoa(nofile)+" && exec \"$0\" run --etc \"$1\"", filepath.Join(binDir, "nsfd"), e.etc)
	return e.startCmd(cmd)
}

// openFDs counts a process's open descriptors.
func openFDs(pid int) int {
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(ents)
}

var metricsAddrRE = regexp.MustCompile(`metrics: addr=(\S+)`)

// TestHostileConnectionFlood: hundreds of idle and keep-alive connections
// to metrics_addr, the control socket and the resolver socket, more than
// the master has descriptors, take none of its own work: `nsfd status` and
// `nsfd reload` answer, workers resolve names, a new daemon starts, an
// oversized request body is refused.
func TestHostileConnectionFlood(t *testing.T) {
	const nofile = 256
	e := newEnv(t)
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\nmetrics_addr = 127.0.0.1:0\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 3\n"))
	m := e.startLimited(nofile)
	m.addr("echo")
	e.waitReady()
	var metrics string
	waitFor(t, "the metrics address in the log", 10*time.Second, func() bool {
		mm := metricsAddrRE.FindStringSubmatch(e.log())
		if mm != nil {
			metrics = mm[1]
		}
		return mm != nil
	})
	pid := m.cmd.Process.Pid

	// The flood: for each listener, connections that never send a byte,
	// keep-alive connections idle after one request, and headers that
	// trickle in — twice as many as the master's whole descriptor limit.
	control := filepath.Join(e.dir, "var/run/nsfd.sock")
	resolver := filepath.Join(e.dir, "var/run/resolve.sock")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range nofile {
		for _, target := range [][2]string{{"tcp", metrics}, {"unix", control}, {"unix", resolver}} {
			c, err := net.DialTimeout(target[0], target[1], 5*time.Second)
			if err != nil {
				continue // the backlog may be full for a moment: the flood goes on
			}
			conns = append(conns, c)
			switch i % 3 {
			case 1:
				c.SetDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") // a 404 from the resolver: as good
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			case 2:
				fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHo")
			}
		}
	}
	if n := openFDs(pid); n >= nofile-fdReserveForTest {
		t.Errorf("the master holds %d descriptors of its %d under the flood", n, nofile)
	}
	if out, errOut, code := e.nsfd("status"); code != 0 || !strings.Contains(out, "echo") {
		t.Errorf("nsfd status under the flood: exit %d\n%s%s", code, out, errOut)
	}
	// Workers still resolve names through the resolver socket.
	rc := remote.Dial(resolver)
	defer rc.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if eps, err := rc.Resolve(rctx, "echo", registry.ResolveOptions{}); err != nil || len(eps) != 1 {
		t.Errorf("resolve through the resolver socket under the flood: %v, %v", eps, err)
	}
	e.write("more.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	out, errOut, code := e.nsfd("reload")
	if code != 0 || strings.Contains(out+errOut, "too many open files") {
		t.Errorf("nsfd reload under the flood: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, "the new daemon running", 15*time.Second, func() bool {
		d := e.status().daemon("more")
		return d != nil && d.State == "running" && len(d.Workers) == 1
	})
	if strings.Contains(e.log(), "too many open files") {
		t.Error("the master ran out of descriptors")
	}
	if !strings.Contains(e.log(), "connection limit reached; closing idle connections to make room") {
		t.Error("the log does not say the connection limit was reached")
	}
	// A request body larger than the API takes is refused, not read.
	status, body := e.control("POST", "/v1/reload", strings.NewReader(strings.Repeat("x", 64<<20)))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "the limit is") {
		t.Errorf("a 64 MiB body: %d %s; want 413", status, body)
	}
}

// fdReserveForTest is what the master must keep free under a flood: the
// test's view of supervisor's fdReserve.
const fdReserveForTest = 64

// TestHostileMasterStall: the master is stopped (SIGSTOP) for 8 s, four
// watchdog periods, while its workers keep pinging into a notify queue that
// fills up; on SIGCONT it must notice its own stall and keep every worker,
// not SIGKILL them all for the pings it did not read.
func TestHostileMasterStall(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 3\nmin_spare_servers = 0\nmax_spare_servers = 2\nmax_servers = 4\nwatchdog = 2s\n"))
	m := e.start()
	addr := m.addr("echo")
	waitFor(t, "3 ready workers", 15*time.Second, func() bool {
		d := e.status().daemon("echo")
		return d != nil && len(d.Workers) == 3 && d.Workers[0].State == "idle" && d.Workers[1].State == "idle" && d.Workers[2].State == "idle"
	})
	before := e.pids("echo")

	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// A chatty process fills the notify socket's small queue at once: from
	// here on every ping of the workers is dropped (they give up after a
	// moment), and what the master finds on waking holds none of them.
	fillNotifyQueue(t, filepath.Join(e.dir, "var/run/notify/echo.sock"))
	time.Sleep(8 * time.Second) // the attack: the master does not run for 8 s
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Watch for two watchdog periods: nobody may be replaced.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if now := e.pids("echo"); !maps.Equal(now, before) {
			t.Fatalf("workers %v became %v after the master's stall", before, now)
		}
	}
	if strings.Contains(e.log(), "missed its watchdog") {
		t.Error("a worker was killed for a missed watchdog")
	}
	if !strings.Contains(e.log(), "nsfd.echo: the master was stalled; giving every worker a fresh watchdog and ready_timeout period") {
		t.Error("the log does not say the master noticed its stall")
	}
	echo(t, addr, "still serving")
}

// fillNotifyQueue sends datagrams to a notify socket until its queue is full.
func fillNotifyQueue(t *testing.T, path string) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for n := 0; ; n++ {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Write([]byte("STATUS=chatter")); err != nil {
			if n == 0 {
				t.Fatalf("no datagram got into %s: %v", path, err)
			}
			return
		}
	}
}

// floodWorker: slot 0 floods its notify socket with datagrams as fast as it
// can; every other slot is a well-behaved worker that pings its watchdog.
const floodWorker = `import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", addr)
print("worker", os.environ["NSFD_WORKER"], "ready", flush=True)
if os.environ["NSFD_WORKER"] == "0":
    s.setblocking(False)
    junk = [b"STATUS=" + b"x" * 4000, b"BUSY=1\nBUSY=0", b"garbage", b"\xff" * 5000, b"WATCHDOG=1"]
    i = 0
    while True:
        try:
            s.sendto(junk[i % 5], addr)
        except OSError:
            pass
        i += 1
s.settimeout(0.5)
while True:
    try:
        s.sendto(b"WATCHDOG=1", addr)
    except OSError:
        pass
    time.sleep(0.2)
`

// TestHostileNotifyFlood: one worker floods the daemon's notify socket; its
// siblings' watchdog pings still get through, nobody else is killed, and
// the master stays responsive and its memory bounded.
func TestHostileNotifyFlood(t *testing.T) {
	e := newEnv(t)
	e.write("worker.py", floodWorker)
	e.write("flood.ini", "command = python3 "+filepath.Join(e.etc, "worker.py")+"\nport = 127.0.0.1:0\ntype = notify\nwatchdog = 1s\n"+
		"min_servers = 4\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 5\n")
	m := e.start()
	m.addr("flood")
	waitFor(t, "4 workers ready", 15*time.Second, func() bool { return strings.Count(e.log(), " ready") >= 4 })
	before := e.pids("flood")
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if now := e.pids("flood"); !maps.Equal(now, before) {
			t.Fatalf("workers %v became %v under the flood", before, now)
		}
	}
	if strings.Contains(e.log(), "missed its watchdog") {
		t.Error("a worker was killed for a missed watchdog")
	}
	if n := strings.Count(e.log(), "dropped notify datagram"); n != 1 {
		t.Errorf("%d log lines about dropped datagrams in 6 s of flood; want the first one only", n)
	}
	if out, _, code := e.nsfd("status", "flood"); code != 0 || !strings.Contains(out, "running") {
		t.Errorf("nsfd status under the flood: %d\n%s", code, out)
	}
}
