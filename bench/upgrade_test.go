package bench

// An upgrade of nsfd itself under connect-per-request load: `nsfd upgrade`
// (re-executed in place: same pid, same workers, listeners never closed)
// against the way without it, stop + start. Each is measured in its own
// load run on the same master's etc/: the requests that failed, and how
// long the action took (for stop + start: from SIGTERM until a request is
// answered again).

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type upgradeSide struct {
	name string
	load loadResult
	took time.Duration
	pid  string // "kept" or "changed"
}

var upgradeDone []upgradeSide

func BenchmarkUpgrade(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	if upgradeDone == nil {
		upgradeDone = measureUpgrade(b)
		printUpgrade(os.Stdout, upgradeDone)
		addUpgradeReport(upgradeDone)
	}
	for _, s := range upgradeDone {
		b.ReportMetric(float64(s.load.Errors), strings.ReplaceAll(s.name, " ", "")+"-failed")
	}
}

func measureUpgrade(b *testing.B) []upgradeSide {
	dir := shortTempDir(b, "nsfdup")
	bin := filepath.Join(dir, "nsfd")
	src, err := os.ReadFile(bins.nsfd)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a fixed port, the same after a restart
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "nsfd.ini"), []byte("[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = info\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "echo.ini"), []byte(fmt.Sprintf("command = %s\nport = %s\ntype = notify\n"+
		"min_servers = 4\nmax_servers = 4\nmin_spare_servers = 0\nmax_spare_servers = 3\n", bins.echo, addr)), 0o644)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--etc", etc)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		return cmd
	}
	serving := func(limit time.Duration) time.Duration {
		t0 := time.Now()
		for time.Since(t0) < limit {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(time.Second))
				_, err = c.Write(echoLine)
				if err == nil {
					buf := make([]byte, len(echoLine))
					_, err = io.ReadFull(c, buf)
				}
				c.Close()
				if err == nil {
					return time.Since(t0)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.Fatalf("%s not serving within %v", addr, limit)
		return 0
	}
	cmd := start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	serving(30 * time.Second)

	d := quick(4*time.Second, 2*time.Second)
	clients := 4
	run := func(name string, action func() (time.Duration, string)) upgradeSide {
		done := make(chan loadResult)
		go func() { done <- generateLoad(context.Background(), echoConnect, addr, clients, d) }()
		time.Sleep(d / 4) // the load runs before and after the action
		took, pid := action()
		return upgradeSide{name: name, load: <-done, took: took, pid: pid}
	}
	upgrade := run("nsfd upgrade", func() (time.Duration, string) {
		before := cmd.Process.Pid
		t0 := time.Now()
		out, err := exec.Command(bin, "--etc", etc, "upgrade").CombinedOutput()
		if err != nil {
			b.Fatalf("nsfd upgrade: %v\n%s", err, out)
		}
		took := time.Since(t0)
		if pid := cmd.Process.Pid; pid != before {
			return took, "changed"
		}
		return took, "kept"
	})
	restart := run("stop + start", func() (time.Duration, string) {
		before := cmd.Process.Pid
		t0 := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		cmd = start()
		serving(30 * time.Second)
		if cmd.Process.Pid == before {
			return time.Since(t0), "kept"
		}
		return time.Since(t0), "changed"
	})
	return []upgradeSide{upgrade, restart}
}

func printUpgrade(w io.Writer, sides []upgradeSide) {
	fmt.Fprintf(w, "| action | master pid | requests answered | requests failed | time |\n| --- | --- | ---: | ---: | ---: |\n")
	for _, s := range sides {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s |\n", s.name, s.pid, s.load.Requests, s.load.Errors, roundDur(s.took))
	}
}

func addUpgradeReport(sides []upgradeSide) {
	up, rs := sides[0], sides[1]
	note := ""
	if up.load.Errors > 0 {
		note = "first error: " + up.load.FirstErr
	}
	addTarget(target{
		order:    orderUpgrade,
		what:     "upgrade nsfd itself under connect-per-request load (4 clients, 4 echo workers): requests failed",
		goal:     "0",
		measured: fmt.Sprintf("%d of %d in %s, master pid %s (stop + start: %d of %d failed, %s without service)", up.load.Errors, up.load.Requests+up.load.Errors, roundDur(up.took), up.pid, rs.load.Errors, rs.load.Requests+rs.load.Errors, roundDur(rs.took)),
		met:      up.load.Errors == 0 && up.pid == "kept",
		note:     note,
	})
	addSection(orderUpgrade, "Upgrading nsfd itself", func(w io.Writer) {
		fmt.Fprintln(w, "The same master and etc/ (4 `examples/echo` workers), 4 connect-per-request clients, the action a quarter into each load run. "+
			"`nsfd upgrade` re-executes the binary in place (docs/upgrade.md); its time is the command's, preflight included. "+
			"Stop + start: SIGTERM, the master drains and exits, a new one starts; its time runs until a request is answered again.")
		fmt.Fprintln(w)
		printUpgrade(w, sides)
	})
}
