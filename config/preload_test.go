package config

import (
	"strings"
	"testing"
)

func TestPreloadKey(t *testing.T) {
	t.Parallel()
	base := "command = /bin/cat\nport = 127.0.0.1:7001\n"
	cases := []struct {
		name, text string
		master     *Master
		want       string // "" loads with Preload set
	}{
		{"true", base + "preload = true\n", nil, ""},
		{"yes", base + "preload = yes\n", nil, ""},
		{"bad value", base + "preload = maybe\n", nil, `echo.ini:3: key "preload": unknown value "maybe" (want true or false)`},
		{"builtin", "builtin = queue\npreload = true\n", nil, `echo.ini:2: key "preload": a builtin worker cannot be preloaded`},
		{"chroot", base + "chroot = /\npreload = true\n", nil, `echo.ini:4: key "preload": a preloaded daemon cannot be chrooted`},
		{"portable", base + "preload = true\n", &Master{ProcessBackend: "portable"}, `echo.ini:3: key "preload": needs the pump process backend`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, t.TempDir(), "echo.ini", c.text)
			m := c.master
			if m != nil {
				d := defaultMaster(t.TempDir())
				d.ProcessBackend = m.ProcessBackend
				m = d
			}
			d, err := LoadDaemon(path, m)
			if c.want == "" {
				if err != nil || !d.Preload {
					t.Fatalf("err %v, preload %v", err, d != nil && d.Preload)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}
