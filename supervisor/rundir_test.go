package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nsfd/nsfd/config"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestPrepareRunDirMakesTheNotifyPathSearchable(t *testing.T) {
	old := syscall.Umask(0o077) // the narrowest: the modes must not depend on it
	defer syscall.Umask(old)
	root := t.TempDir()
	m := &config.Master{RunDir: filepath.Join(root, "var", "run")}
	m.ControlSocket = filepath.Join(m.RunDir, "nsfd.sock")
	if err := prepareRunDir(m, config.RunAs{UID: os.Geteuid()}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(root, "var"): 0o711, // searched, not listed
		m.RunDir:                   0o755,
		m.NotifyDir():              0o711,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	// What exists is left alone.
	os.Chmod(m.RunDir, 0o700)
	if err := prepareRunDir(m, config.RunAs{UID: os.Geteuid()}); err != nil || mode(t, m.RunDir) != 0o700 {
		t.Errorf("an existing run_dir: %04o, %v", mode(t, m.RunDir), err)
	}
}

func TestPrepareRunDirRefusesOneAnotherUserCouldWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the check applies to a master running as root, and to chown")
	}
	root := t.TempDir()
	m := &config.Master{RunDir: filepath.Join(root, "run")}
	m.ControlSocket = filepath.Join(m.RunDir, "nsfd.sock")
	os.Mkdir(m.RunDir, 0o755)
	os.Chown(m.RunDir, 65534, 65534) // pre-created by nobody
	root0 := config.RunAs{UID: 0, Name: "root"}
	err := prepareRunDir(m, root0)
	if !errors.Is(err, config.ErrUntrusted) || !strings.Contains(err.Error(), m.RunDir+" is writable by its owner uid 65534 (mode 0755, owner 65534:65534)") {
		t.Errorf("run_dir of nobody: %v", err)
	}
	if _, err := os.Stat(m.NotifyDir()); err == nil {
		t.Error("the notify dir was made inside a run_dir of nobody")
	}
	os.Chown(m.RunDir, 0, 0)
	os.Mkdir(m.NotifyDir(), 0o711)
	os.Chown(m.NotifyDir(), 65534, 65534)
	if err := prepareRunDir(m, root0); !errors.Is(err, config.ErrUntrusted) || !strings.Contains(err.Error(), m.NotifyDir()) {
		t.Errorf("notify dir of nobody: %v", err)
	}
	os.Chown(m.NotifyDir(), 0, 0)
	if err := prepareRunDir(m, root0); err != nil {
		t.Errorf("root's: %v", err)
	}
}
