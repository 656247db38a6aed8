//go:build linux

package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docExample is one shell line of a ```sh block of the docs.
type docExample struct {
	where string // FILE:LINE
	line  string
}

// trailingComment is a comment after a command: two spaces or more, "#".
var trailingComment = regexp.MustCompile(`\s{2,}#.*$`)

// docExamples are the lines of the ```sh blocks of README.md and docs/*.md
// that drive nsfd or talk to the sample daemons: the quick start and the
// examples a user copies. Lines that start a master (run, make run), install
// a service or follow a log forever are left out; they are covered by
// their own tests. Examples meant not to be run go in plain ``` blocks.
func docExamples(t *testing.T) []docExample {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoDir, "docs", "*.md"))
	files = append([]string{filepath.Join(repoDir, "README.md")}, files...)
	var out []docExample
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in := false
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for n := 1; sc.Scan(); n++ {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "```sh"):
				in = true
				continue
			case strings.HasPrefix(l, "```"):
				in = false
				continue
			}
			if !in {
				continue
			}
			l = strings.TrimSpace(trailingComment.ReplaceAllString(l, ""))
			fields := strings.Fields(l)
			if len(fields) < 2 {
				continue
			}
			verb := fields[1]
			switch {
			case fields[0] != "nsfd" && fields[0] != "bin/nsfd" && !strings.HasPrefix(l, "exec 3<>/dev/tcp/"):
				continue
			case verb == "run" || verb == "service" || strings.Contains(l, " -f"):
				continue
			}
			rel, _ := filepath.Rel(repoDir, f)
			out = append(out, docExample{where: rel + ":" + strconv.Itoa(n), line: l})
		}
	}
	return out
}

// TestDocExamples runs the shell examples of README.md and docs/ against a
// master on the sample etc/ (its ports 7001-7003), from a directory laid
// out as the repository: bin/ (the binaries under test), etc/, examples/.
func TestDocExamples(t *testing.T) {
	for _, port := range []string{"7001", "7002", "7003"} {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Skipf("port %s is busy (a `make run`?): the sample etc/ needs it", port)
		}
		l.Close()
	}
	exs := docExamples(t)
	if len(exs) < 5 {
		t.Fatalf("only %d examples found in the docs", len(exs))
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.Symlink(binDir, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repoDir, "examples"), filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	inis, _ := filepath.Glob(filepath.Join(repoDir, "etc", "*.ini"))
	for _, f := range inis {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "etc", filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"), "NSFD_ETC=")
	master := exec.Command(filepath.Join(dir, "bin", "nsfd"), "run")
	master.Dir, master.Env = dir, env
	master.WaitDelay = 5 * time.Second // its workers may hold the output open
	var out syncBuffer
	master.Stdout, master.Stderr = &out, &out
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { master.Wait(); close(done) }()
	t.Cleanup(func() {
		master.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			master.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "var", "log", "nsfd.log"))
			t.Logf("master:\n%s\ncentral log:\n%s", out.String(), b)
		}
	})
	run := func(line string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "--norc", "--noprofile", "-c", line)
		cmd.Dir, cmd.Env, cmd.WaitDelay = dir, env, time.Second
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	// Every daemon of the sample running.
	for _, name := range []string{"echo", "pyecho", "kv", "queue"} {
		waitFor(t, name+" running", 30*time.Second, func() bool {
			_, err := run("nsfd status " + name)
			return err == nil
		})
	}
	for _, ex := range exs {
		if o, err := run(ex.line); err != nil {
			t.Errorf("%s: %s: %v\n%s", ex.where, ex.line, err, o)
		} else {
			t.Logf("%s: %s: ok", ex.where, ex.line)
		}
	}
}
