//go:build linux

package main

// End-to-end tests of the central log tools: nsfd logs, following across
// a logrotate reopen and size rotation, and the syslog target.

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const talkConf = "command = /bin/sh -c 'echo hello from talk; exec sleep 1000'\nport = 127.0.0.1:0\nstart_seconds = 10ms\n" +
	"min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"

func TestLogsTailAndFollow(t *testing.T) {
	e := newEnv(t)
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\nmax_size = 2048\nmax_files = 5\n")
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	e.write("talk.ini", talkConf)
	m := e.start()
	m.addr("talk")
	waitFor(t, "talk's line", 10*time.Second, func() bool { return strings.Contains(e.log(), "stdout: hello from talk") })
	e.waitReady()
	if _, errOut, code := e.nsfd("restart", "talk"); code != 0 {
		t.Fatalf("restart: %s", errOut)
	}
	waitFor(t, "a second talk line", 10*time.Second, func() bool { return strings.Count(e.log(), "stdout: hello from talk") == 2 })

	// -n 5 --daemon talk: five lines, all about talk.
	out, errOut, code := e.nsfd("logs", "-n", "5", "--daemon", "talk")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 5 {
		t.Fatalf("logs -n 5 --daemon talk: exit %d, %d lines:\n%s%s", code, len(lines), out, errOut)
	}
	about := regexp.MustCompile(`^\S+ (\[\w+\]\s+nsfd\.talk: |talk\[\d+\] std(out|err):)`)
	for _, l := range lines {
		if !about.MatchString(l) {
			t.Errorf("not a talk line: %q", l)
		}
	}

	// -f follows: across a logrotate rename + SIGUSR1, and across size rotation.
	cmd := exec.Command(filepath.Join(binDir, "nsfd"), "--etc", e.etc, "logs", "-f", "-n", "0", "--daemon", "talk")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	var mu sync.Mutex
	var seen []string
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			seen = append(seen, sc.Text())
			mu.Unlock()
		}
	}()
	saw := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range seen {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	}
	// The follower is up once it shows a new line; make some until it does.
	restartTalk := func() string {
		t.Helper()
		before := e.pids("talk")
		if _, errOut, code := e.nsfd("restart", "talk"); code != 0 {
			t.Fatalf("restart: %s", errOut)
		}
		var pid string
		waitFor(t, "a new talk worker", 10*time.Second, func() bool {
			for p := range e.pids("talk") {
				if !before[p] {
					pid = strconv.Itoa(p)
					return true
				}
			}
			return false
		})
		return "talk[" + pid + "] stdout: hello from talk"
	}
	waitFor(t, "the follower to start", 15*time.Second, func() bool {
		return saw(restartTalk())
	})

	// logrotate: rename, then SIGUSR1 makes the master reopen.
	os.Rename(e.logFile(), e.logFile()+".rotated")
	m.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "the reopened file", 10*time.Second, func() bool { _, err := os.Stat(e.logFile()); return err == nil })
	want := restartTalk()
	waitFor(t, "a line after the reopen", 10*time.Second, func() bool { return saw(want) })

	// Size rotation (max_size 2048): every new line still arrives.
	for range 8 {
		want := restartTalk()
		waitFor(t, "a line across size rotation", 10*time.Second, func() bool { return saw(want) })
	}
	if _, err := os.Stat(e.logFile() + ".1"); err != nil {
		t.Errorf("no size rotation happened: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range seen {
		if !about.MatchString(l) {
			t.Errorf("follower printed a line not about talk: %q", l)
		}
	}
}

func TestSyslogTarget(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	e := newEnv(t)
	e.write("nsfd.ini", "[nsfd]\nrun_dir = ../var/run\n[log]\ntarget = syslog\nsyslog_addr = udp://"+pc.LocalAddr().String()+"\nsyslog_ident = nsfdtest\nsyslog_facility = local3\n")
	e.write("talk.ini", talkConf)
	e.start()
	// local3 (19) * 8 + info (6) = 158.
	want := regexp.MustCompile(`^<158>1 \S+ \S+ nsfdtest \d+ \S+ \[nsfd@\d+ daemon="talk" pid="\d+" stream="stdout"\] talk\[\d+\] stdout: hello from talk|^<158>1 .* hello from talk`)
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(15 * time.Second)
	for {
		pc.SetReadDeadline(deadline)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no worker line reached the syslog receiver: %v", err)
		}
		if want.Match(buf[:n]) {
			return
		}
	}
}
