package bench

// supervisord's side of the comparison: finding it, its configuration, and
// its master, started and stopped.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// svInstall is the supervisord found on the machine.
type svInstall struct {
	supervisord, supervisorctl string
	version                    string // "4.2.5"
	python                     string // "Python 3.11.2": the interpreter of supervisord's script
}

var svFound struct {
	done bool
	sv   *svInstall
	err  error
}

// findSupervisord looks for supervisord and supervisorctl in PATH, once.
func findSupervisord() (*svInstall, error) {
	if svFound.done {
		return svFound.sv, svFound.err
	}
	svFound.done = true
	sv := &svInstall{}
	var err error
	if sv.supervisord, err = exec.LookPath("supervisord"); err != nil {
		svFound.err = err
		return nil, err
	}
	if sv.supervisorctl, err = exec.LookPath("supervisorctl"); err != nil {
		svFound.err = err
		return nil, err
	}
	out, err := exec.Command(sv.supervisord, "--version").Output()
	if err != nil {
		svFound.err = fmt.Errorf("supervisord --version: %w", err)
		return nil, svFound.err
	}
	sv.version = strings.TrimSpace(string(out))
	if script, err := os.ReadFile(sv.supervisord); err == nil && bytes.HasPrefix(script, []byte("#!")) {
		line, _, _ := bytes.Cut(script[2:], []byte("\n"))
		if interp := strings.Fields(string(line)); len(interp) > 0 {
			out, _ := exec.Command(interp[0], append(interp[1:], "--version")...).CombinedOutput()
			sv.python = strings.TrimSpace(string(out))
		}
	}
	svFound.sv = sv
	return sv, nil
}

// svProgram is a [program:NAME] section of n `sleep` processes.
func svProgram(name, sleep string, n int) string {
	return fmt.Sprintf("[program:%s]\ncommand = %s %s\nnumprocs = %d\nprocess_name = %%(program_name)s_%%(process_num)03d\n"+
		"startsecs = 0\nautorestart = true\nredirect_stderr = true\nstdout_logfile = AUTO\n", name, sleep, sleepSeconds, n)
}

// svMainConf is supervisord's own configuration, in dir.
func svMainConf(dir string, minfds int) string {
	return fmt.Sprintf(`[supervisord]
logfile = %[1]s/supervisord.log
loglevel = info
pidfile = %[1]s/supervisord.pid
childlogdir = %[1]s/log
minfds = %[2]d
silent = true

[unix_http_server]
file = %[1]s/sv.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://%[1]s/sv.sock

[include]
files = %[1]s/conf.d/*.ini
`, dir, minfds)
}

// svMinFDs is supervisord's minfds for a fleet of n: its default, 1024, or
// as many as ensureLimits gives nsfd's master when that is more. supervisord
// holds a pipe end for stdout, one for stdin and a log file per process.
func svMinFDs(n int) int { return max(1024, 4*n+256) }

func svSystem(sv *svInstall, sleep string) *system {
	return &system{
		side: sideSv,
		start: func(tb testing.TB, programs, per int) fleetMaster {
			confs := map[string]string{}
			for i := range programs {
				confs[programName(i)] = svProgram(programName(i), sleep, per)
			}
			return startSupervisord(tb, sv, confs, svMinFDs(programs*per))
		},
		add: func(m fleetMaster, name string) (time.Duration, error) {
			s := m.(*svMaster)
			if err := dropFile(filepath.Join(s.dir, "conf.d"), name+".ini", svProgram(name, sleep, 1)); err != nil {
				return 0, err
			}
			t0 := time.Now()
			out, err := exec.Command(sv.supervisorctl, "-c", s.conf(), "update").CombinedOutput()
			if err != nil {
				return time.Since(t0), fmt.Errorf("supervisorctl update: %w\n%s", err, out)
			}
			return time.Since(t0), nil
		},
		program: func(pid int) string { return procEnv(pid, "SUPERVISOR_GROUP_NAME") },
	}
}

// svMaster is a running `supervisord -n -c CONF` on a configuration in a
// temp dir.
type svMaster struct {
	dir    string
	cmd    *exec.Cmd
	t0     time.Time // just before the exec
	pidNS  bool      // supervisord is the first process of its own PID namespace
	exited chan struct{}
}

// startSupervisord writes supervisord's configuration with one file per
// entry of programs (NAME → its [program:NAME] section) in its include
// directory, and starts supervisord in the foreground. It is stopped when tb
// ends.
func startSupervisord(tb testing.TB, sv *svInstall, programs map[string]string, minfds int) *svMaster {
	tb.Helper()
	dir, err := os.MkdirTemp("", "svb") // short: the control socket is a UNIX socket
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"conf.d", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	files := map[string]string{"sv.conf": svMainConf(dir, minfds)}
	for name, conf := range programs {
		files[filepath.Join("conf.d", name+".ini")] = conf
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	out, err := os.Create(filepath.Join(dir, "master.out"))
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	s := &svMaster{dir: dir, exited: make(chan struct{})}
	s.t0 = time.Now()
	s.cmd, s.pidNS, err = startIsolated(func() *exec.Cmd {
		cmd := exec.Command(sv.supervisord, "-n", "-c", s.conf())
		cmd.Stdout, cmd.Stderr = out, out
		return cmd
	})
	if err != nil {
		tb.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	tb.Cleanup(func() {
		if err := s.stop(60 * time.Second); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func (s *svMaster) conf() string       { return filepath.Join(s.dir, "sv.conf") }
func (s *svMaster) pid() int           { return s.cmd.Process.Pid }
func (s *svMaster) started() time.Time { return s.t0 }

func (s *svMaster) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *svMaster) diagnostics() string {
	log, _ := os.ReadFile(filepath.Join(s.dir, "supervisord.log"))
	if len(log) > 4000 {
		log = append([]byte("…"), log[len(log)-4000:]...)
	}
	out, _ := os.ReadFile(filepath.Join(s.dir, "master.out"))
	return fmt.Sprintf("supervisord.log:\n%s\nsupervisord output:\n%s", log, out)
}

// stop sends SIGTERM, on which supervisord stops its processes and exits;
// after timeout it kills supervisord and the processes it had.
func (s *svMaster) stop(timeout time.Duration) error {
	if !s.running() {
		return nil
	}
	kids := childPIDs(s.pid())
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		for _, pid := range kids { // without a PID namespace, nothing else would
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-s.exited
		return fmt.Errorf("supervisord did not exit within %v of SIGTERM; killed", timeout)
	}
}
