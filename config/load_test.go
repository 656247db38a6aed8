package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDaemonFiles(t *testing.T) {
	etc := t.TempDir()
	for _, name := range []string{
		"nsfd.ini", "echo.ini", "queue.conf", "b.ini", ".hidden.ini", ".echo.ini.swp", "echo.ini.swp",
		"echo.ini.swx", "echo.ini~", ".#echo.ini", "4913", "new.ini.tmp", "notes.txt", "echo.ini.bak",
		".ini", "#echo.ini#",
	} {
		writeFile(t, etc, name, "")
	}
	os.Mkdir(filepath.Join(etc, "dir.ini"), 0o755)
	os.Symlink("echo.ini", filepath.Join(etc, "link.ini"))
	os.Symlink("dir.ini", filepath.Join(etc, "linkdir.ini"))
	got, err := DaemonFiles(etc)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		if filepath.Dir(p) != etc {
			t.Errorf("path %q not in %q", p, etc)
		}
		names = append(names, filepath.Base(p))
	}
	if want := []string{"b.ini", "echo.ini", "link.ini", "queue.conf"}; !reflect.DeepEqual(names, want) {
		t.Errorf("DaemonFiles = %q, want %q", names, want)
	}
	if _, err := DaemonFiles(filepath.Join(etc, "nope")); err == nil {
		t.Error("DaemonFiles of a missing directory: no error")
	}
}

func TestLoad(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, "nsfd.ini", "[nsfd]\nnode_name = alpha\nrun_dir = /run/nsfd\n")
	writeFile(t, etc, "web.ini", "command = /bin/sh\nport = 8080\nrequires = api, queue\n")
	writeFile(t, etc, "api.ini", "command = /bin/sh\nport = 8081\nrequires = db\n")
	writeFile(t, etc, "db.ini", "command = /bin/sh\nport = 5432\n")
	writeFile(t, etc, "queue.conf", "builtin queue\n")
	writeFile(t, etc, "cron.ini", "command = /bin/sh\nport = 1\nrequires = broken\n")
	writeFile(t, etc, "broken.ini", "command = /bin/sh\nport = 1\nmin_servers = lots\n")
	writeFile(t, etc, "lost.ini", "command = /bin/sh\nport = 2\nrequires = nosuch\n")
	writeFile(t, etc, "x1.ini", "command = /bin/sh\nport = 3\n")
	writeFile(t, etc, "x2.ini", "command = /bin/sh\nport = 4\ndaemon_name = x1\n")
	writeFile(t, etc, "c1.ini", "command = /bin/sh\nport = 5\nrequires = c2\n")
	writeFile(t, etc, "c2.ini", "command = /bin/sh\nport = 6\nrequires = c1\n")
	writeFile(t, etc, "self.ini", "command = /bin/sh\nport = 7\nrequires = self\n")
	writeFile(t, etc, "onc.ini", "command = /bin/sh\nport = 8\nrequires = c1\n") // requires a daemon of a cycle

	s, err := Load(etc)
	if err != nil {
		t.Fatal(err)
	}
	if s.Master.NodeName != "alpha" {
		t.Errorf("Master = %+v", s.Master)
	}
	var names []string
	for _, d := range s.Daemons {
		names = append(names, d.Name)
	}
	if want := []string{"api", "cron", "db", "onc", "queue", "web"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Daemons = %q, want %q", names, want)
	}
	var bad []string
	for path := range s.Errors {
		bad = append(bad, filepath.Base(path))
	}
	slices.Sort(bad)
	if want := []string{"broken.ini", "c1.ini", "c2.ini", "lost.ini", "self.ini", "x1.ini", "x2.ini"}; !reflect.DeepEqual(bad, want) {
		t.Errorf("Errors for %q, want %q", bad, want)
	}
	for file, want := range map[string]string{
		"c1.ini":   `c1.ini:3: key "requires": requires cycle: c1 -> c2 -> c1`,
		"self.ini": `self.ini:3: key "requires": daemon "self" requires itself`,
		"lost.ini": `lost.ini:3: key "requires": requires unknown daemon "nosuch"`,
		"x1.ini":   `x1.ini: daemon "x1" is also defined in x2.ini`,
		"x2.ini":   `x2.ini:3: key "daemon_name": daemon "x1" is also defined in x1.ini`,
	} {
		if got := s.Errors[filepath.Join(etc, file)].Error(); got != etc+"/"+want {
			t.Errorf("%s: %s\nwant %s", file, got, want)
		}
	}
	if q := s.Daemons[4]; q.Listeners[0].Addr != "/run/nsfd/queue.sock" {
		t.Errorf("queue listens on %v", q.Listeners)
	}

	var order [][]string
	for _, group := range s.StartOrder() {
		var g []string
		for _, d := range group {
			g = append(g, d.Name)
		}
		order = append(order, g)
	}
	// onc requires c1, which is not in the Set: it does not wait for it.
	if want := [][]string{{"cron", "db", "onc", "queue"}, {"api"}, {"web"}}; !reflect.DeepEqual(order, want) {
		t.Errorf("StartOrder = %q, want %q", order, want)
	}
	stop := s.StopOrder()
	if len(stop) != 3 || stop[0][0].Name != "web" || stop[2][0].Name != "cron" {
		t.Errorf("StopOrder = %v", stop)
	}

	// Check reports the same problems, sorted by file then line.
	err = Check(etc)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Check = %v", err)
	}
	if len(es) != 7 {
		t.Errorf("Check found %d problems:\n%v", len(es), err)
	}
	for i := 1; i < len(es); i++ {
		if a, b := es[i-1], es[i]; a.File > b.File || a.File == b.File && a.Line > b.Line {
			t.Errorf("not sorted: %v before %v", a, b)
		}
	}
}

func TestLoadBrokenMaster(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, "nsfd.ini", "[nsfd]\nbogus = 1\n")
	writeFile(t, etc, "echo.ini", "command = /bin/cat\nport = 1\nmin_servers = x\n")
	if _, err := Load(etc); err == nil || !strings.Contains(err.Error(), `key "bogus"`) {
		t.Errorf("Load = %v, want the nsfd.ini error", err)
	}
	// Check goes on to the daemon files.
	err := Check(etc)
	want := etc + "/echo.ini:3: key \"min_servers\": \"x\" is not an integer\n" +
		etc + "/nsfd.ini:2: key \"bogus\": unknown key in [nsfd]"
	if err == nil || err.Error() != want {
		t.Errorf("Check = %v\nwant %s", err, want)
	}
}

func TestCheckClean(t *testing.T) {
	needRoot(t)
	fakeUsers(t)
	etc := openTempDir(t)
	if err := Check(etc); err != nil {
		t.Errorf("Check of an empty etc = %v", err)
	}
	writeFile(t, etc, "echo.ini", designEcho)
	writeFile(t, filepath.Dir(etc), "bin/echo", "#!/bin/sh\n")
	os.Chmod(filepath.Join(filepath.Dir(etc), "bin", "echo"), 0o755)
	if err := Check(etc); err != nil {
		t.Errorf("Check = %v", err)
	}
	if err := Check(filepath.Join(etc, "nope")); err == nil || !strings.HasSuffix(err.Error(), "nope: cannot read: no such file or directory") {
		t.Errorf("Check of a missing etc = %v", err)
	}
}

func TestStartOrderHandMadeCycle(t *testing.T) {
	a := &Daemon{Name: "a", Requires: []string{"b"}}
	b := &Daemon{Name: "b", Requires: []string{"a"}}
	c := &Daemon{Name: "c"}
	got := (&Set{Daemons: []*Daemon{a, b, c}}).StartOrder()
	if len(got) != 2 || got[0][0] != c || len(got[1]) != 2 {
		t.Errorf("StartOrder = %v", got)
	}
}
