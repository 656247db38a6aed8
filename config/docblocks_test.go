package config

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fileComment is the first line of a config block of the docs that names
// its file: "; etc/NAME.ini".
var fileComment = regexp.MustCompile(`^; etc/([A-Za-z0-9_.-]+\.(?:ini|conf))\s*$`)

// blockErrors are the errors of err but those about files a block names
// and the reader provides (certificates, tokens): they do not exist here.
func blockErrors(err error) []error {
	var es Errors
	if !errors.As(err, &es) {
		if err != nil {
			return []error{err}
		}
		return nil
	}
	var out []error
	for _, e := range es {
		if !strings.HasSuffix(e.Error(), "does not exist") {
			out = append(out, e)
		}
	}
	return out
}

// wholeDaemon matches a block that is a whole daemon file, not a fragment.
var wholeDaemon = regexp.MustCompile(`(?m)^(command|builtin)\s*=`)

// Every ```ini block of README.md and docs/ that names its file on its
// first line ("; etc/echo.ini") passes check on its own.
func TestDocConfigBlocks(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	files = append([]string{filepath.Join("..", "README.md")}, files...)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var block []string
		in, start := false, 0
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for line := 1; sc.Scan(); line++ {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "```ini"):
				in, block, start = true, nil, line
			case in && strings.HasPrefix(l, "```"):
				in = false
				if len(block) == 0 {
					continue
				}
				m := fileComment.FindStringSubmatch(block[0])
				if m == nil || !wholeDaemon.MatchString(strings.Join(block, "\n")) {
					continue // not a file, or a fragment of one
				}
				n++
				// Laid out as a repository (etc/, bin/), searchable by
				// the workers' user.
				root, err := os.MkdirTemp("", "nsfd-docblock")
				if err != nil {
					t.Fatal(err)
				}
				defer os.RemoveAll(root)
				os.Chmod(root, 0o755)
				dir := filepath.Join(root, "etc")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, p := range []string{"echo", "kv"} { // the programs of the examples
					os.MkdirAll(filepath.Join(root, "bin"), 0o755)
					if err := os.WriteFile(filepath.Join(root, "bin", p), []byte("#!/bin/sh\n"), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, m[1]), []byte(strings.Join(block, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				for _, e := range blockErrors(Check(dir)) {
					t.Errorf("%s:%d: the block of %s does not pass check: %v", f, start, m[1], e)
				}
			case in:
				block = append(block, l)
			}
		}
	}
	if n == 0 {
		t.Error("no config block found in the docs")
	}
}
