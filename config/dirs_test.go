package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUntrustedDirectoriesRefusedAsRoot(t *testing.T) {
	needRoot(t)
	root := openTempDir(t)
	etc := filepath.Join(root, "etc")
	writeFile(t, etc, "echo.ini", "command = /bin/true\nport = 127.0.0.1:0\n")

	// A world-writable etc/: refused as a whole, naming it, its mode and owner.
	os.Chmod(etc, 0o777)
	_, err := LoadAs(etc, asRoot)
	want := etc + ": refused: " + etc + " is writable by every user (mode 0777, owner 0:0)"
	if !errors.Is(err, ErrUntrusted) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("world-writable etc: %v\nwant %s", err, want)
	}
	if err := CheckAs(etc, asRoot); err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("check of a world-writable etc (one error, its files unread): %v", err)
	}
	os.Chmod(etc, os.ModeSticky|0o777) // sticky: others could still add files
	if _, err := LoadAs(etc, asRoot); !errors.Is(err, ErrUntrusted) {
		t.Errorf("sticky world-writable etc: %v", err)
	}
	// Owned by another user.
	os.Chmod(etc, 0o755)
	os.Chown(etc, 65534, 65534)
	if _, err := LoadAs(etc, asRoot); err == nil || !strings.Contains(err.Error(), etc+" is writable by its owner uid 65534 (mode 0755, owner 65534:65534)") {
		t.Errorf("etc owned by nobody: %v", err)
	}
	os.Chown(etc, 0, 0)
	// A master that is not root checks nothing of the kind.
	os.Chmod(etc, 0o777)
	if _, err := LoadAs(etc, RunAs{UID: 1000}); err != nil {
		t.Errorf("as non-root: %v", err)
	}
	os.Chmod(etc, 0o755)
	if _, err := LoadAs(etc, asRoot); err != nil {
		t.Fatalf("a root-owned etc: %v", err)
	}

	// run_dir pre-created by another user, and its notify directory.
	run := filepath.Join(root, "var", "run")
	os.MkdirAll(run, 0o755)
	os.Chown(run, 65534, 65534)
	_, err = LoadAs(etc, asRoot)
	want = `nsfd.ini: key "run_dir": refused: ` + run + " is writable by its owner uid 65534 (mode 0755, owner 65534:65534)"
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), want) {
		t.Errorf("run_dir of nobody: %v\nwant %s", err, want)
	}
	os.Chown(run, 0, 0)
	os.Mkdir(filepath.Join(run, NotifyDirName), 0o777)
	os.Chmod(filepath.Join(run, NotifyDirName), 0o777)
	if _, err := LoadAs(etc, asRoot); err == nil || !strings.Contains(err.Error(), filepath.Join(run, NotifyDirName)+" is writable by every user") {
		t.Errorf("world-writable notify dir: %v", err)
	}
	os.Chmod(filepath.Join(run, NotifyDirName), 0o711)

	// A parent that another user could write: the directory could be replaced.
	var1 := filepath.Join(root, "var")
	os.Chown(var1, 65534, 0)
	if _, err := LoadAs(etc, asRoot); err == nil || !strings.Contains(err.Error(), var1+" is writable by its owner uid 65534") {
		t.Errorf("run_dir under a directory of nobody: %v", err)
	}
	os.Chown(var1, 0, 0)

	// The log's directory, set in nsfd.ini: the error is on its line.
	logs := filepath.Join(root, "logs")
	os.Mkdir(logs, 0o775)
	os.Chmod(logs, 0o775)
	os.Chown(logs, 0, 65534)
	writeFile(t, etc, MasterFileName, "[log]\nfile = ../logs/nsfd.log\n")
	if _, err := LoadAs(etc, asRoot); err == nil || !strings.Contains(err.Error(), `nsfd.ini:2: key "file": refused: `+logs+" is writable by group gid 65534 (mode 0775, owner 0:65534)") {
		t.Errorf("log dir writable by a group: %v", err)
	}
	os.Remove(filepath.Join(etc, MasterFileName))

	// Missing directories are nsfd's to create: the nearest existing one is judged.
	if err := CheckDir(filepath.Join(root, "new", "run"), asRoot); err != nil {
		t.Errorf("a run_dir to create under a root-owned dir: %v", err)
	}
	tmpLike := filepath.Join(root, "tmp")
	os.Mkdir(tmpLike, 0o777)
	os.Chmod(tmpLike, os.ModeSticky|0o777)
	if err := CheckDir(filepath.Join(tmpLike, "nsfd"), asRoot); err == nil || !strings.Contains(err.Error(), tmpLike+" is writable by every user (mode 1777") {
		t.Errorf("a run_dir to create in a /tmp: another user could create it first: %v", err)
	}
	// A root-owned directory inside a sticky one is fine (it cannot be replaced).
	os.Mkdir(filepath.Join(tmpLike, "mine"), 0o755)
	if err := CheckDir(filepath.Join(tmpLike, "mine"), asRoot); err != nil {
		t.Errorf("a root-owned directory in a sticky one: %v", err)
	}
}

func TestDaemonFileInAnUntrustedDirectoryRefused(t *testing.T) {
	needRoot(t)
	root := openTempDir(t)
	etc := filepath.Join(root, "etc")
	os.MkdirAll(etc, 0o755)
	// A symbolic link from etc/ to a root-owned file in a directory that
	// another user owns: that user could replace the file.
	home := filepath.Join(root, "home")
	target := writeFile(t, home, "app.ini", "command = /bin/true\nport = 127.0.0.1:0\n")
	os.Chown(home, 65534, 65534)
	os.Symlink(target, filepath.Join(etc, "app.ini"))
	s, err := LoadAs(etc, asRoot)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Errors[filepath.Join(etc, "app.ini")]
	if !errors.Is(got, ErrUntrusted) || !strings.Contains(got.Error(), "app.ini: refused: "+home+" is writable by its owner uid 65534") {
		t.Errorf("link to a file in nobody's directory: %v", got)
	}
	// The same link to a file of root's in root's directory loads.
	os.Chown(home, 0, 0)
	if s, _ := LoadAs(etc, asRoot); len(s.Daemons) != 1 {
		t.Errorf("link to a trusted file: %v", s.Errors)
	}
	// An env_file in a world-writable directory (no sticky bit).
	shared := filepath.Join(root, "shared")
	writeFile(t, shared, "app.env", "A=1\n")
	os.Chmod(shared, 0o777)
	writeFile(t, etc, "envy.ini", "command = /bin/true\nport = 127.0.0.1:0\nenv_file = ../shared/app.env\n")
	s, _ = LoadAs(etc, asRoot)
	if got := s.Errors[filepath.Join(etc, "envy.ini")]; got == nil || !strings.Contains(got.Error(), `envy.ini:3: key "env_file": "../shared/app.env": refused: `+shared+" is writable by every user") {
		t.Errorf("env_file in a world-writable dir: %v", got)
	}
}

func TestLinksAreJudgedByBothWays(t *testing.T) {
	needRoot(t)
	root := openTempDir(t)
	etc := filepath.Join(root, "real", "etc")
	writeFile(t, etc, "echo.ini", "command = /bin/true\nport = 127.0.0.1:0\n")
	// etc/ reached through a link that lives in nobody's directory: nobody
	// could point the link at an etc/ of their own.
	theirs := filepath.Join(root, "theirs")
	os.Mkdir(theirs, 0o755)
	os.Symlink(etc, filepath.Join(theirs, "etc"))
	os.Chown(theirs, 65534, 65534)
	if _, err := LoadAs(filepath.Join(theirs, "etc"), asRoot); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), theirs+" is writable by its owner uid 65534") {
		t.Errorf("etc through nobody's link: %v", err)
	}
	// The same link in root's directory is fine.
	os.Chown(theirs, 0, 0)
	if _, err := LoadAs(filepath.Join(theirs, "etc"), asRoot); err != nil {
		t.Errorf("etc through root's link: %v", err)
	}
	// A link loop is an error, at once.
	os.Symlink("loop.ini", filepath.Join(etc, "loop.ini"))
	s, err := LoadAs(etc, asRoot)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Errors[filepath.Join(etc, "loop.ini")]; got == nil || !strings.Contains(got.Error(), "loop.ini: cannot read:") {
		t.Errorf("a link loop: %v", got)
	}
}
