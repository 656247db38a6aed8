//go:build linux

package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var updateHelp = flag.Bool("update", false, "rewrite the golden files of testdata/help")

// commandPaths are the argument lists of every command of the tree.
func commandPaths() [][]string {
	root := NewMain().newRoot()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, sub := range c.Commands() {
			if !sub.Hidden {
				walk(sub, append(append([]string{}, path...), sub.Name()))
			}
		}
	}
	walk(root, nil)
	return out
}

// Every verb's --help, against testdata/help/VERB.txt (go test -run
// TestHelpGolden -update rewrites them).
func TestHelpGolden(t *testing.T) {
	t.Parallel()
	for _, path := range commandPaths() {
		name := strings.Join(append([]string{"nsfd"}, path...), "_")
		var out, errOut bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errOut}
		if code := m.Run(context.Background(), append(path, "--help")); code != 0 {
			t.Errorf("%s --help: exit %d %s", name, code, errOut.String())
			continue
		}
		golden := filepath.Join("testdata", "help", name+".txt")
		if *updateHelp {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Errorf("%s: %v (go test -run TestHelpGolden -update writes it)", name, err)
			continue
		}
		if out.String() != string(want) {
			t.Errorf("%s --help differs from %s (-update rewrites it):\n%s", name, golden, out.String())
		}
		if len(path) > 0 && path[0] != "help" && path[0] != "completion" && !strings.Contains(out.String(), "Examples:") {
			t.Errorf("%s --help has no example", name)
		}
	}
}

// --version prints the version given with -ldflags -X main.Version.
func TestVersionFlag(t *testing.T) {
	old := Version
	Version = "1.2.3"
	defer func() { Version = old }()
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out}
	if code := m.Run(context.Background(), []string{"--version"}); code != 0 || !strings.HasPrefix(out.String(), "nsfd 1.2.3 (go") {
		t.Errorf("--version: exit %d %q", code, out.String())
	}
}

// `nsfd completion bash`, loaded in a real bash with bash-completion,
// completes verbs, flags and daemon names (here from etc/'s files).
func TestBashCompletion(t *testing.T) {
	t.Parallel()
	const bc = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bc); err != nil {
		t.Skip("bash-completion is not installed (make setup installs it)")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	e := newEnv(t)
	e.write("echo.ini", echoConf("min_servers = 1\nmax_servers = 2\n"))
	nsfd := filepath.Join(binDir, "nsfd")
	complete := func(line string) []string {
		t.Helper()
		script := `source ` + bc + `
source <("$NSFD" completion bash)
complete -p nsfd >/dev/null || exit 9
COMP_LINE="$LINE"; COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_WORDS[0]="$NSFD"
__start_nsfd
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", "--norc", "--noprofile", "-c", script)
		cmd.Env = append(os.Environ(), "NSFD="+nsfd, "LINE="+line, "NSFD_ETC="+e.etc)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
		}
		return strings.Fields(string(out))
	}
	has := func(got []string, want string) bool {
		for _, g := range got {
			if g == want {
				return true
			}
		}
		return false
	}
	if got := complete("nsfd sta"); !has(got, "status") || !has(got, "start") {
		t.Errorf("verbs: %q", got)
	}
	if got := complete("nsfd status "); !has(got, "echo") {
		t.Errorf("daemon names: %q", got)
	}
	if got := complete("nsfd logs --le"); !has(got, "--level") {
		t.Errorf("flags: %q", got)
	}
}
