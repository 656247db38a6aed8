package logging

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// received collects the messages a test receiver got.
type received struct {
	mu   sync.Mutex
	msgs []string
}

func (r *received) add(m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *received) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func (r *received) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// startUDP starts a syslog receiver on a UDP port of 127.0.0.1.
func startUDP(tb testing.TB) (*received, string) {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &received{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			r.add(string(buf[:n]))
		}
	}()
	tb.Cleanup(func() {
		pc.Close()
		<-done
	})
	return r, pc.LocalAddr().String()
}

// msg5424 is an RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID
// MSGID SD MSG.
var msg5424 = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[(?:[^\]\\]|\\.)*\])(?: (.*))?$`)

// msg3164 is a local-socket message: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG.
var msg3164 = regexp.MustCompile(`^<(\d+)>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) ([^\[: ]+)\[(\d+)\]:(?: (.*))?$`)

// syslogMsg is a received message, parsed.
type syslogMsg struct {
	pri    int
	time   string
	host   string // 5424 only
	app    string
	procid string
	msgid  string // 5424 only
	sd     string // 5424 only
	text   string
}

func parse5424(tb testing.TB, s string) syslogMsg {
	tb.Helper()
	m := msg5424.FindStringSubmatch(s)
	if m == nil {
		tb.Fatalf("not an RFC 5424 message: %q", s)
	}
	pri, _ := strconv.Atoi(m[1])
	if _, err := time.Parse(time.RFC3339Nano, m[2]); err != nil {
		tb.Fatalf("timestamp of %q: %v", s, err)
	}
	return syslogMsg{pri: pri, time: m[2], host: m[3], app: m[4], procid: m[5], msgid: m[6], sd: m[7], text: m[8]}
}

func parse3164(tb testing.TB, s string) syslogMsg {
	tb.Helper()
	m := msg3164.FindStringSubmatch(s)
	if m == nil {
		tb.Fatalf("not a local syslog message: %q", s)
	}
	pri, _ := strconv.Atoi(m[1])
	return syslogMsg{pri: pri, time: m[2], app: m[3], procid: m[4], text: m[5]}
}

// workerText is the message text of worker line i.
func workerText(i int) string { return fmt.Sprintf("line %05d with \"quotes\" ] and spaces", i) }

// checkWorkerLines checks that msgs are exactly the worker lines 0..n-1 of
// daemon[pid] on stream, each once, in order, with ident and pri, as RFC 5424
// (with structured data) or local messages; other messages are returned.
func checkWorkerLines(tb testing.TB, msgs []string, rfc5424 bool, ident string, pri int, daemon string, pid int, stream string, n int) (other []syslogMsg) {
	tb.Helper()
	next := 0
	prefix := fmt.Sprintf("%s[%d] %s: ", daemon, pid, stream)
	wantSD := fmt.Sprintf(`[nsfd@32473 daemon="%s" pid="%d" stream="%s"]`, daemon, pid, stream)
	for _, raw := range msgs {
		var m syslogMsg
		if rfc5424 {
			m = parse5424(tb, raw)
		} else {
			m = parse3164(tb, raw)
		}
		if !strings.HasPrefix(m.text, prefix) {
			other = append(other, m)
			continue
		}
		if want := prefix + workerText(next); m.text != want {
			tb.Fatalf("message %d: %q, want text %q", next, raw, want)
		}
		if m.pri != pri || m.app != ident || m.procid != strconv.Itoa(os.Getpid()) {
			tb.Fatalf("message %d: %q, want pri %d, ident %s, procid %d", next, raw, pri, ident, os.Getpid())
		}
		if rfc5424 && (m.sd != wantSD || m.msgid != "-") {
			tb.Fatalf("message %d: %q, want structured data %s", next, raw, wantSD)
		}
		next++
	}
	if next != n {
		tb.Fatalf("%d worker lines received, want %d", next, n)
	}
	return other
}

// TestSyslogUDP: worker lines and master records reach a UDP receiver as RFC
// 5424 messages, each line exactly once.
func TestSyslogUDP(t *testing.T) {
	const lines, batch = 1000, 50
	recv, addr := startUDP(t)
	s, err := Open(Config{Target: TargetSyslog, SyslogAddr: "udp://" + addr, SyslogIdent: "nsfd-test", SyslogFacility: "local3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSink(t, s) })
	// In batches, each received before the next is sent, so that the
	// receiver's socket buffer never overflows: UDP drops silently.
	for i := 0; i < lines; i += batch {
		for j := i; j < i+batch; j++ {
			s.WorkerLine("echo", 1234, StreamStdout, []byte(workerText(j)))
		}
		waitFor(t, "a batch of lines", func() bool { return recv.len() == i+batch })
	}
	s.Logger().Named("echo").Warn("worker exited", "pid", 1234, "status", "exit status 1")
	s.Logger().Named("echo").Debug("not written at level info")
	s.WorkerLine("echo", 1234, StreamStderr, []byte("to stderr"))
	waitFor(t, "the master record", func() bool { return recv.len() == lines+2 })
	closeSink(t, s)

	// local3 = 19: info 19*8+6, warning 19*8+4, notice 19*8+5.
	other := checkWorkerLines(t, recv.all(), true, "nsfd-test", 158, "echo", 1234, StreamStdout, lines)
	if len(other) != 2 {
		t.Fatalf("other messages %+v, want 2", other)
	}
	host, _ := os.Hostname()
	want := syslogMsg{pri: 156, host: sanitizeSyslogName(host, 255), app: "nsfd-test", procid: strconv.Itoa(os.Getpid()),
		msgid: "-", sd: "-", text: "nsfd.echo: worker exited: pid=1234 status=\"exit status 1\""}
	want.time = other[0].time
	if other[0] != want {
		t.Errorf("master record\n got %+v\nwant %+v", other[0], want)
	}
	if m := other[1]; m.pri != 157 || m.text != "echo[1234] stderr: to stderr" ||
		m.sd != `[nsfd@32473 daemon="echo" pid="1234" stream="stderr"]` {
		t.Errorf("stderr line %+v", m)
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("dropped %d", d)
	}
}

// TestSyslogLocal: with no address, the first local socket that exists gets
// local-style messages; a stream socket gets them NUL-terminated.
func TestSyslogLocal(t *testing.T) {
	const lines = 500
	for _, network := range []string{"unixgram", "unix"} {
		t.Run(network, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "log")
			recv := &received{}
			done := make(chan struct{})
			var stop func()
			if network == "unixgram" {
				c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					defer close(done)
					buf := make([]byte, 1<<17)
					for {
						n, _, err := c.ReadFrom(buf)
						if err != nil {
							return
						}
						recv.add(string(buf[:n]))
					}
				}()
				stop = func() { c.Close() }
			} else {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					defer close(done)
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					br := bufio.NewReader(c)
					for {
						m, err := br.ReadString(0)
						if err != nil {
							return
						}
						recv.add(strings.TrimSuffix(m, "\x00"))
					}
				}()
				stop = func() { ln.Close() }
			}

			cfg := Config{Target: TargetSyslog, SyslogIdent: "my tag:x", SyslogFacility: "local7"}
			cfg, _, err := cfg.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			st, err := openSyslogTarget(cfg, []string{filepath.Join(dir, "missing"), sock})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := openTest(t, cfg, st)
			for i := range lines {
				s.WorkerLine("echo", 7, StreamStdout, []byte(workerText(i)))
			}
			s.Logger().Error("boom", "err", errors.New("x"))
			waitFor(t, "every line", func() bool { return recv.len() == lines+1 })
			closeSink(t, s)
			stop()
			<-done

			// local7 = 23: info 190, err 187.
			other := checkWorkerLines(t, recv.all(), false, "my_tag_x", 190, "echo", 7, StreamStdout, lines)
			if len(other) != 1 || other[0].pri != 187 || other[0].text != "nsfd: boom: err=x" {
				t.Errorf("other messages %+v", other)
			}
		})
	}
}

// TestSyslogLocalMissing: no local socket at all is an error at Open.
func TestSyslogLocalMissing(t *testing.T) {
	cfg, _, err := Config{Target: TargetSyslog}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = openSyslogTarget(cfg, []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")})
	if err == nil || !strings.Contains(err.Error(), dir+"/a, "+dir+"/b") {
		t.Errorf("open: %v", err)
	}
}

// TestSyslogMessage: the message of each kind of record, in both formats.
func TestSyslogMessage(t *testing.T) {
	ts := time.Date(2026, 11, 24, 19, 15, 0, 125e6, time.UTC)
	worker := func(daemon string, stream string) *entry {
		return &entry{time: ts, daemon: daemon, pid: 1234, stream: stream, data: []byte("the line")}
	}
	master := func(level hclog.Level) *entry { return &entry{master: true, level: level, time: ts} }
	tests := []struct {
		name   string
		remote bool
		json   bool
		e      *entry
		p      string
		want   string
	}{
		{"5424 worker", true, false, worker("echo", StreamStdout),
			"2026-11-24T19:15:00.125Z echo[1234] stdout: the line\n",
			`<30>1 2026-11-24T19:15:00.125Z host nsfd 99 - [nsfd@32473 daemon="echo" pid="1234" stream="stdout"] echo[1234] stdout: the line`},
		{"5424 stderr, escaped daemon", true, false, worker(`a"b]c\`, StreamStderr),
			"2026-11-24T19:15:00.125Z x[1234] stderr: the line\n",
			`<29>1 2026-11-24T19:15:00.125Z host nsfd 99 - [nsfd@32473 daemon="a\"b\]c\\" pid="1234" stream="stderr"] x[1234] stderr: the line`},
		{"5424 master error", true, false, master(hclog.Error),
			"2026-11-24T19:15:00.125Z [ERROR] nsfd.echo: spawn failed: err=\"no\\nway\"\n",
			`<27>1 2026-11-24T19:15:00.125Z host nsfd 99 - - nsfd.echo: spawn failed: err="no\nway"`},
		{"5424 master trace", true, false, master(hclog.Trace), "2026-11-24T19:15:00.125Z [TRACE] nsfd: t\n",
			`<31>1 2026-11-24T19:15:00.125Z host nsfd 99 - - nsfd: t`},
		{"5424 master no level", true, false, master(hclog.NoLevel), "2026-11-24T19:15:00.125Z [INFO]  nsfd: n\n",
			`<30>1 2026-11-24T19:15:00.125Z host nsfd 99 - - nsfd: n`},
		{"5424 json", true, true, worker("echo", StreamStdout), `{"@message":"the line"}` + "\n",
			`<30>1 2026-11-24T19:15:00.125Z host nsfd 99 - [nsfd@32473 daemon="echo" pid="1234" stream="stdout"] {"@message":"the line"}`},
		{"local worker", false, false, worker("echo", StreamStdout),
			"2026-11-24T19:15:00.125Z echo[1234] stdout: the line\n",
			"<30>" + ts.Local().Format(time.Stamp) + " nsfd[99]: echo[1234] stdout: the line"},
		{"local empty line", false, false, worker("echo", StreamStdout),
			"2026-11-24T19:15:00.125Z echo[1234] stdout:\n",
			"<30>" + ts.Local().Format(time.Stamp) + " nsfd[99]: echo[1234] stdout:"},
		{"local master warn", false, false, master(hclog.Warn), "2026-11-24T19:15:00.125Z [WARN]  nsfd: 3 log lines dropped: total=3\n",
			"<28>" + ts.Local().Format(time.Stamp) + " nsfd[99]: nsfd: 3 log lines dropped: total=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &syslogTarget{addr: syslogAddr{remote: tt.remote}, json: tt.json, facility: 3, ident: "nsfd", hostname: "host", pid: 99}
			if got := string(st.message(tt.e, []byte(tt.p))); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestParseSyslogAddr: the address forms and their errors.
func TestParseSyslogAddr(t *testing.T) {
	local := []string{"/dev/log", "/var/run/syslog"}
	good := map[string]syslogAddr{
		"":                    {dests: []syslogDest{{"unixgram", "/dev/log"}, {"unix", "/dev/log"}, {"unixgram", "/var/run/syslog"}, {"unix", "/var/run/syslog"}}},
		"udp://loghost:514":   {dests: []syslogDest{{"udp", "loghost:514"}}, remote: true},
		"tcp://[::1]:6514":    {dests: []syslogDest{{"tcp", "[::1]:6514"}}, remote: true},
		"unix:///run/log":     {dests: []syslogDest{{"unixgram", "/run/log"}, {"unix", "/run/log"}}},
		"unixgram:///dev/log": {dests: []syslogDest{{"unixgram", "/dev/log"}}},
	}
	for in, want := range good {
		got, err := parseSyslogAddr(in, local)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("parseSyslogAddr(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"loghost:514", "udp://loghost", "tcp://:x", "udp://h:99999", "unix://dev/log", "unix:relative", "http://h:1", "tcp://h:1/path"} {
		if got, err := parseSyslogAddr(in, local); err == nil {
			t.Errorf("parseSyslogAddr(%q) = %v, want an error", in, got)
		}
	}
}
