//go:build linux

package main

// End-to-end tests of the master's own life: how it stops, what its death
// leaves behind, and what it tells systemd.

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStopKillsStubbornWorkerAndExitsZero(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 2\nmin_spare_servers = 1\nmax_spare_servers = 2\nmax_servers = 4\n"))
	e.write("stubborn.ini", "command = /bin/sh -c \"trap '' TERM; echo stubborn; while :; do sleep 1; done\"\nport = 127.0.0.1:0\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\ngraceful_timeout = 300ms\n")
	m := e.start()
	m.addr("echo")
	waitFor(t, "3 workers", 15*time.Second, func() bool { return len(m.workers("")) == 3 })
	waitFor(t, "stubborn running", 15*time.Second, func() bool { return strings.Contains(e.log(), "stdout: stubborn") })
	pids := m.workers("")
	start := time.Now()
	if code := m.stop(); code != 0 {
		t.Fatalf("nsfd run exited %d after SIGTERM, want 0", code)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("exited after %v, before the stubborn worker's graceful_timeout", d)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("worker %d left behind", pid)
		}
	}
	if !strings.Contains(e.log(), "worker did not stop in time; killing it") {
		t.Error("the SIGKILL after graceful_timeout is not in the log")
	}
}

func TestKilledMasterLeavesNoWorker(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 3\nmin_spare_servers = 1\nmax_spare_servers = 3\nmax_servers = 6\n"))
	e.write("sh.ini", "command = /bin/sh -c \"while :; do sleep 1; done\"\nport = 127.0.0.1:0\nmin_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n")
	m := e.start()
	waitFor(t, "4 workers", 15*time.Second, func() bool { return len(m.workers("")) == 4 })
	pids := m.workers("")
	m.cmd.Process.Kill()
	<-m.exited
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		for _, pid := range pids {
			if alive(pid) {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				left = append(left, strings.TrimSpace(string(b)))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the master's SIGKILL, workers still run:\n%s\ncentral log:\n%s", strings.Join(left, "\n"), e.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSystemdNotify plays systemd: the master's NOTIFY_SOCKET is the test's
// socket, and it must say READY=1 once its daemons are up, RELOADING=1 then
// READY=1 around a reload, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmin_spare_servers = 0\nmax_spare_servers = 1\nmax_servers = 2\n"))
	sock := filepath.Join(e.dir, "systemd.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("socket closed waiting for %s", want)
				}
				if strings.Contains(m, want) {
					return m
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("no %s from the master", want)
			}
		}
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	m := e.start()
	ready := next("READY=1")
	if !strings.Contains(ready, "STATUS=1 daemon(s) started") {
		t.Errorf("READY without a status summary: %q", ready)
	}
	// The daemon is up when READY=1 arrives.
	if len(m.workers("echo")) != 1 {
		t.Errorf("READY=1 before the daemons started")
	}
	m.cmd.Process.Signal(syscall.SIGHUP)
	if r := next("RELOADING=1"); !strings.Contains(r, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", r)
	}
	next("READY=1")
	m.cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	<-m.exited
	// Workers never see the master's NOTIFY_SOCKET.
	if strings.Contains(e.log(), sock) {
		t.Error("the master's NOTIFY_SOCKET leaked")
	}
}
