package config

import (
	"path/filepath"
	"strings"
)

// NotifyDirName is the directory of run_dir that holds the daemons' notify
// sockets.
const NotifyDirName = "notify"

// NotifyDir is the directory of the daemons' notify sockets.
func (m *Master) NotifyDir() string { return filepath.Join(m.RunDir, NotifyDirName) }

// NotifyPath is the NOTIFY_SOCKET of daemon's workers.
func (m *Master) NotifyPath(daemon string) string {
	return filepath.Join(m.NotifyDir(), daemon+".sock")
}

// checkMasterDirs refuses, when the master runs as root, the directories it
// writes into (run_dir, its notify directory, the control socket's and the
// central log's directories, the SQLite registry's) if another user could
// write them or replace them through a parent (CheckDir). The error of
// each is on the key that names the directory, or on the file when the key
// is not set. l is nil when there is no nsfd.ini.
func checkMasterDirs(m *Master, l *keyLoader, as RunAs) Errors {
	if !as.IsRoot() {
		return nil
	}
	path := filepath.Join(m.Dir, MasterFileName)
	if l != nil {
		path = l.path
	}
	type use struct {
		section, key string
		dir          string
		why          string
	}
	uses := []use{
		{"nsfd", "run_dir", m.RunDir, whyRunDir},
		{"nsfd", "run_dir", m.NotifyDir(), whyRunDir},
		{"nsfd", "control_socket", filepath.Dir(m.ControlSocket), whyRunDir},
	}
	if m.Log.Target == "file" {
		uses = append(uses, use{"log", "file", filepath.Dir(m.Log.File), whyLog})
	}
	if m.Registry.Type == "sqlite" {
		uses = append(uses, use{"registry", "dsn", filepath.Dir(m.Registry.DSN), whyLog})
	}
	var errs Errors
	seen := map[string]bool{}
	for _, u := range uses {
		if seen[u.dir] {
			continue
		}
		seen[u.dir] = true
		err := checkDir(u.dir, as, u.why)
		if err == nil {
			continue
		}
		e := &Error{File: path, Key: u.key, Msg: err.Error(), Err: err}
		if l != nil {
			e.Line = l.line(u.section, u.key)
		}
		errs = append(errs, e)
	}
	return errs
}

// checkEtc refuses, when the master runs as root, an etc directory that
// another user could write (CheckDir): that user could add, replace or
// remove daemons.
func checkEtc(etcDir string, as RunAs) *Error {
	err := checkDir(etcDir, as, whyEtc)
	if err == nil {
		return nil
	}
	e := readError(etcDir, err)
	e.Msg = strings.TrimPrefix(e.Msg, "cannot read: ")
	return e
}
