package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestCredsForARootMaster(t *testing.T) {
	fakeUsers(t)
	etc := openTempDir(t)
	base := "command = /bin/true\nport = 127.0.0.1:0\n"
	for _, tc := range []struct {
		keys string
		want Creds
		err  string
	}{
		{"", Creds{UID: -1, GID: -1}, ""},
		{"user = nobody\n", Creds{UID: 65534, GID: 65534}, ""},
		{"user = 1000\n", Creds{UID: 1000, GID: 1000}, ""},
		{"user = app\ngroup = adm\ngroups = video, www-data\n", Creds{UID: 1000, GID: 4, Groups: []int{44, 33}}, ""},
		{"group = adm\n", Creds{UID: 0, GID: 4}, ""}, // group alone: the master's uid
		{"user = nosuch\n", Creds{}, `:3: key "user": no user "nosuch"`},
		{"user = app\ngroup = nosuch\n", Creds{}, `:4: key "group": no group "nosuch"`},
		{"groups = adm\n", Creds{}, `:3: key "groups": has no effect without user or group (set user or group too)`},
	} {
		path := writeFile(t, etc, "x.ini", base+tc.keys)
		d, errs, _ := loadDaemon(path, nil, RunAs{UID: 0})
		if tc.err != "" {
			if len(errs) != 1 || !strings.HasSuffix(errs[0].Error(), tc.err) {
				t.Errorf("%q: errors %v, want %q", tc.keys, errs, tc.err)
			}
			continue
		}
		if len(errs) > 0 || !reflect.DeepEqual(d.Creds, tc.want) {
			t.Errorf("%q: Creds %+v, %v; want %+v", tc.keys, d.Creds, errs, tc.want)
		}
	}
}

func TestCheckReportsWhatANonRootMasterRefuses(t *testing.T) {
	fakeUsers(t)
	etc := openTempDir(t)
	alice := RunAs{UID: 1000, GID: 1000, Name: "alice"}
	path := writeFile(t, etc, "x.ini", "command = /bin/true\nport = 127.0.0.1:0\nchroot = /srv\ngroup = adm\nuser = nobody\n")
	err := CheckAs(etc, alice)
	want := path + `:3: key "chroot": the master runs as alice (uid 1000), not root, and cannot chroot its workers (run nsfd as root, or remove chroot)` + "\n" +
		path + `:5: key "user": the master runs as alice (uid 1000), not root, and cannot switch its workers to another user or group (run nsfd as root, or remove user, group and groups)`
	if !errors.Is(err, ErrNotRoot) || err.Error() != want {
		t.Errorf("CheckAs alice:\n%v\nwant\n%s", err, want)
	}
	if os.Geteuid() == 0 { // the files are root's: a root master takes them
		if err := CheckAs(etc, asRoot); err != nil {
			t.Errorf("CheckAs root: %v", err)
		}
	}
}

func TestCheckAsRootReportsWritableFilesToAnyCaller(t *testing.T) {
	needRoot(t) // to make a file of root's that everyone may write
	etc := openTempDir(t)
	path := writeFile(t, etc, "x.ini", "command = /bin/true\nport = 127.0.0.1:0\n")
	os.Chmod(path, 0o666)
	if err := CheckAs(etc, asRoot); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "x.ini: refused: writable by every user (mode 0666, owner 0:0)") {
		t.Errorf("CheckAs root: %v", err)
	}
	if err := CheckAs(etc, RunAs{UID: 1000}); err != nil {
		t.Errorf("CheckAs a user: %v", err)
	}
	// CheckUser: root when etc/ is root's, whoever asks.
	if r := CheckUser(etc); !r.IsRoot() {
		t.Errorf("CheckUser of a root-owned etc = %v", r)
	}
}

func TestNotifySocketReachability(t *testing.T) {
	needRoot(t) // directories of several owners
	fakeUsers(t)
	root := openTempDir(t)
	etc := filepath.Join(root, "etc")
	writeFile(t, etc, MasterFileName, "[nsfd]\nrun_dir = ../var/run\n")
	conf := "command = /bin/true\nport = 127.0.0.1:0\nuser = nobody\n"
	notify := writeFile(t, etc, "n.ini", conf+"type = notify\n")
	simple := writeFile(t, etc, "s.ini", conf)
	grouped := writeFile(t, etc, "g.ini", conf+"type = notify\ngroup = 4242\n")

	// var/ as the central log's MkdirAll makes it: 0750, root's.
	varDir := filepath.Join(root, "var")
	os.Mkdir(varDir, 0o750)
	os.Chmod(varDir, 0o750)
	s, err := LoadAs(etc, asRoot)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(varDir, "run", "notify", "n.sock")
	want := notify + `:3: key "user": the workers (uid 65534, gid 65534) cannot reach their notify socket ` + sock + ": " +
		varDir + " (mode 0750, owner 0:0) does not let them search it (chmod o+x " + varDir + ", give them its group, or set run_dir in nsfd.ini to a directory they can reach)"
	if got := s.Errors[notify]; got == nil || got.Error() != want {
		t.Errorf("type = notify:\n%v\nwant\n%s", got, want)
	}
	// type = simple runs, with a warning.
	var sd *Daemon
	for _, d := range s.Daemons {
		if d.File == simple {
			sd = d
		}
	}
	if sd == nil || len(sd.Warnings) != 1 || !strings.Contains(sd.Warnings[0].Error(), "their BUSY, STATUS and STOPPING messages would be lost") {
		t.Errorf("type = simple: %+v, %v", sd, s.Errors[simple])
	}
	// The group of var/ lets its members through.
	os.Chown(varDir, 0, 4242)
	s, _ = LoadAs(etc, asRoot)
	if s.Errors[grouped] != nil || s.Errors[notify] == nil {
		t.Errorf("group 4242: %v; others: %v", s.Errors[grouped], s.Errors[notify])
	}
	// Search permission for others is enough, without listing.
	os.Chmod(varDir, 0o711)
	if s, _ = LoadAs(etc, asRoot); len(s.Errors) != 0 {
		t.Errorf("var/ 0711: %v", s.Errors)
	}
	// Not yet there: the master creates it searchable.
	os.Remove(varDir)
	if s, _ = LoadAs(etc, asRoot); len(s.Errors) != 0 {
		t.Errorf("no var/ yet: %v", s.Errors)
	}
}

func TestPermits(t *testing.T) {
	c := Creds{UID: 1000, GID: 100, Groups: []int{20}}
	for _, tc := range []struct {
		mode     uint32
		uid, gid uint32
		want     bool
	}{
		{0o700, 1000, 0, true},
		{0o070, 1000, 100, false}, // the owner's bits apply to the owner, even if the group's would allow
		{0o710, 0, 100, true},
		{0o710, 0, 20, true},
		{0o710, 0, 30, false},
		{0o701, 0, 30, true},
		{0o750, 0, 0, false},
	} {
		st := &syscall.Stat_t{Uid: tc.uid, Gid: tc.gid}
		setMode(&st.Mode, syscall.S_IFDIR|tc.mode)
		if got := permits(st, c, 1); got != tc.want {
			t.Errorf("mode %04o %d:%d: %v, want %v", tc.mode, tc.uid, tc.gid, got, tc.want)
		}
	}
}

// setMode sets a Stat_t's mode, a uint32 on Linux and a uint16 on the BSDs.
func setMode[T ~uint16 | ~uint32](p *T, m uint32) { *p = T(m) }

func TestCommandTakesNoInlineComment(t *testing.T) {
	etc := t.TempDir()
	for _, tc := range []struct {
		line string
		want []string
		err  string
	}{
		{"command = a ; b", nil, `:1: key "command": "; b" would be dropped as a comment: in an INI value a blank followed by ";" or "#" starts one (put a comment on a line of its own; to give the program a ";" or "#" after a blank, write the whole value in backquotes: command = ` + "`...`)"},
		{"command = prog --color #fff", nil, `"#fff" would be dropped as a comment`},
		{"command = sh -c 'a ; b'", nil, `"; b'" would be dropped as a comment`},
		{`command = "prog" ; the program`, nil, `"; the program" would be dropped as a comment`},
		{"command = `sh -c 'a ; b'`", []string{"sh", "-c", "a ; b"}, ""},
		{"command = sh -c 'a;b'", []string{"sh", "-c", "a;b"}, ""},
		{"command = a#b", []string{"a#b"}, ""},
	} {
		path := writeFile(t, etc, "x.ini", tc.line+"\nport = 127.0.0.1:0 ; a comment elsewhere is fine\n")
		d, errs, _ := loadDaemon(path, nil, RunAs{UID: 1000})
		if tc.err != "" {
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.line, errs, tc.err)
			}
			continue
		}
		if len(errs) > 0 || !reflect.DeepEqual(d.Command, tc.want) {
			t.Errorf("%s: %q, %v", tc.line, d.Command, errs)
		}
	}
	// In a Net::Server conf file the whole line is the value: ";" is shell syntax.
	path := writeFile(t, etc, "x.conf", "command a ; b\nport 1\n")
	if _, errs, _ := loadDaemon(path, nil, RunAs{UID: 1000}); len(errs) != 1 || !strings.Contains(errs[0].Error(), `";" is shell syntax`) {
		t.Errorf("conf: %v", errs)
	}
}
