package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nsfd/nsfd/config"
)

// Modes of the directories the master creates for its sockets. The run
// directory may be listed; the notify directory and the parents the master
// creates for run_dir (var/ of the default layout) only searched, so that a
// worker running as another user reaches its notify socket by name and
// sees nothing else. The socket itself is the workers' user's, mode 0600.
const (
	runDirMode    fs.FileMode = 0o755
	notifyDirMode fs.FileMode = 0o711
	parentDirMode fs.FileMode = 0o711
)

// PrepareRunDir makes m's run directory and its notify directory for a
// master running as the current user, as prepareRunDir says. Call it before
// opening the central log.
func PrepareRunDir(m *config.Master) error { return prepareRunDir(m, config.CurrentUser()) }

// prepareRunDir creates run_dir and its notify directory, before anything
// else creates a parent of theirs with a narrower mode (the central log's
// directory is 0750), and refuses them, as root, if another user could
// write them or a parent (config.CheckDir): such a user could replace the
// control socket and answer `nsfd status` with lies, or a notify socket.
func prepareRunDir(m *config.Master, as config.RunAs) error {
	if err := mkdirs(m.RunDir, runDirMode); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	if err := config.CheckDir(m.RunDir, as); err != nil {
		return err // nothing is made inside it
	}
	if err := mkdirs(m.NotifyDir(), notifyDirMode); err != nil {
		return fmt.Errorf("notify dir: %w", err)
	}
	if err := config.CheckDir(m.NotifyDir(), as); err != nil {
		return err
	}
	return config.CheckDir(filepath.Dir(m.ControlSocket), as)
}

// mkdirs creates dir with mode, and its missing parents with parentDirMode,
// whatever the umask. Directories that exist are left as they are.
func mkdirs(dir string, mode fs.FileMode) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			return err
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d, m := missing[i], parentDirMode
		if i == 0 {
			m = mode
		}
		if err := os.Mkdir(d, m); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		} else if err == nil {
			if err := os.Chmod(d, m); err != nil {
				return err
			}
		}
	}
	return nil
}
