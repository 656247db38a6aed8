package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBroken runs Check on each testdata/broken/CASE/etc and expects the one
// line of CASE/want, prefixed with that etc directory, among the errors.
// `nsfd check --etc CASE/etc` is held to the same files.
func TestBroken(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "broken", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 22 {
		t.Fatalf("only %d broken cases", len(cases))
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "want"))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.TrimRight(string(data), "\n")
			if strings.Contains(want, "\n") {
				t.Fatalf("want holds more than one line: %q", want)
			}
			etc := filepath.Join(dir, "etc")
			if filepath.Join(etc, want) != etc+string(filepath.Separator)+want {
				t.Fatalf("want changes under filepath.Join (it cleans // and ..): %q", want)
			}
			want = filepath.Join(etc, want)

			err = Check(etc)
			if err == nil {
				t.Fatalf("Check(%s) = nil, want %s", etc, want)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Check returned %T, want Errors", err)
			}
			lines := strings.Split(err.Error(), "\n")
			found := false
			for _, l := range lines {
				found = found || l == want
			}
			if !found {
				t.Errorf("no error line\n\t%s\ngot:\n\t%s", want, strings.Join(lines, "\n\t"))
			}

			// Load agrees: a broken nsfd.ini fails it, a broken daemon file is in Set.Errors.
			s, err := Load(etc)
			if err != nil {
				return
			}
			if len(s.Errors) == 0 {
				t.Errorf("Load(%s): no errors in the Set", etc)
			}
			for _, d := range s.Daemons {
				if _, bad := s.Errors[d.File]; bad {
					t.Errorf("daemon %s is loaded and in Errors", d.Name)
				}
			}
		})
	}
}
