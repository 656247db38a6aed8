package logging

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReopen: after logrotate renamed the file, Reopen makes new records go
// to a new file at the original path.
func TestReopen(t *testing.T) {
	s, path := openTest(t, Config{}, nil)
	for i := range 10 {
		s.WorkerLine("d", 1, StreamStdout, []byte("before "+strconv.Itoa(i)))
	}
	waitFor(t, "10 lines in the file", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") == 10
	})
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		s.WorkerLine("d", 1, StreamStdout, []byte("after "+strconv.Itoa(i)))
	}
	closeSink(t, s)

	for file, prefix := range map[string]string{path + ".old": "before ", path: "after "} {
		recs := parseLines(t, readLines(t, file))
		if len(recs) != 10 {
			t.Fatalf("%s: %d lines, want 10", file, len(recs))
		}
		for i, r := range recs {
			if want := prefix + strconv.Itoa(i); r.Message != want {
				t.Errorf("%s line %d: %q, want %q", file, i, r.Message, want)
			}
		}
	}
}

// TestReopenFails: when the path cannot be opened again, Reopen says so and
// records keep going to the file already open.
func TestReopenFails(t *testing.T) {
	s, path := openTest(t, Config{}, nil)
	dir := path[:strings.LastIndexByte(path, '/')]
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(context.Background()); err == nil {
		t.Fatal("reopen succeeded without its directory")
	}
	s.WorkerLine("d", 1, StreamStdout, []byte("still here"))
	closeSink(t, s)
	if lines := readLines(t, dir+".gone/nsfd.log"); len(lines) != 1 {
		t.Errorf("lines %q", lines)
	}
}

// TestRotate: size rotation keeps MaxFiles rotated files, none larger than
// MaxSize, and loses no line it keeps.
func TestRotate(t *testing.T) {
	const maxSize, lines = 2048, 1000
	for _, tt := range []struct {
		name     string
		maxFiles int
	}{
		{"all kept", 100},
		{"oldest removed", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openTest(t, Config{MaxSize: maxSize, MaxFiles: tt.maxFiles}, nil)
			for i := range lines {
				s.WorkerLine("d", 1, StreamStdout, []byte(fmt.Sprintf("line %04d", i)))
			}
			closeSink(t, s)

			// Oldest first: path.N ... path.1, path.
			var files []string
			for i := 1; ; i++ {
				if _, err := os.Stat(path + "." + strconv.Itoa(i)); err != nil {
					break
				}
				files = append([]string{path + "." + strconv.Itoa(i)}, files...)
			}
			files = append(files, path)
			if len(files)-1 > tt.maxFiles {
				t.Fatalf("%d rotated files, want at most %d", len(files)-1, tt.maxFiles)
			}
			var msgs []string
			for _, f := range files {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() > maxSize {
					t.Errorf("%s: %d bytes, more than %d", f, fi.Size(), maxSize)
				}
				for _, r := range parseLines(t, readLines(t, f)) {
					msgs = append(msgs, r.Message)
				}
			}
			// The kept lines are the last ones, each once, in order.
			first := lines - len(msgs)
			if tt.maxFiles == 100 && first != 0 {
				t.Errorf("%d lines kept, want all %d", len(msgs), lines)
			}
			if tt.maxFiles == 3 && len(files) != 4 {
				t.Errorf("%d files, want 4", len(files))
			}
			for i, m := range msgs {
				if want := fmt.Sprintf("line %04d", first+i); m != want {
					t.Fatalf("kept line %d: %q, want %q", i, m, want)
				}
			}
		})
	}
}
