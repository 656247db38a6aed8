package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadMaster reads etcDir/nsfd.ini. A missing file yields a Master with every
// default. etcDir is made absolute, and so are the paths in the result;
// relative paths in the file resolve against etcDir. Every key belongs to a
// section: a key above the first [section] is an error (whose hint names the
// section it belongs in). The error is Errors, every problem in the file.
func LoadMaster(etcDir string) (*Master, error) {
	m, errs := loadMaster(etcDir, CurrentUser())
	if len(errs) > 0 {
		return nil, errs
	}
	return m, nil
}

// defaultMaster is the Master of an etc directory without nsfd.ini.
func defaultMaster(etcDir string) *Master {
	dir, err := filepath.Abs(etcDir)
	if err != nil {
		dir = filepath.Clean(etcDir)
	}
	node, err := os.Hostname()
	if err != nil || node == "" {
		node = "localhost"
	}
	runDir, logFile, dsn := resolve(dir, DefaultRunDir), resolve(dir, DefaultLogFile), resolve(dir, DefaultRegistryDSN)
	if systemEtc(dir) {
		runDir, logFile, dsn = SystemRunDir, SystemLogFile, SystemRegistryDSN
	}
	m := &Master{
		File:     filepath.Join(dir, MasterFileName),
		Dir:      dir,
		NodeName: node,
		RunDir:   runDir,
		Registry: Registry{
			Type:      DefaultRegistryType,
			DSN:       dsn,
			Heartbeat: DefaultHeartbeat,
		},
		Log: Log{
			Target:         DefaultLogTarget,
			File:           logFile,
			Format:         DefaultLogFormat,
			Level:          DefaultLogLevel,
			SyslogIdent:    DefaultSyslogIdent,
			SyslogFacility: DefaultSyslogFacility,
		},
	}
	m.ControlSocket = filepath.Join(m.RunDir, DefaultControlSocketName)
	return m
}

// systemEtc reports whether dir is a system configuration directory, one
// under /etc, whose defaults are the FHS paths (SystemRunDir, ...) rather
// than ../var beside it.
func systemEtc(dir string) bool {
	return strings.HasPrefix(filepath.Clean(dir), "/etc/")
}

// resolve makes p absolute against dir.
func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// loadMaster is LoadMaster for a master running as as, returning the
// defaults along with any errors, so that Check can go on to the daemon
// files.
func loadMaster(etcDir string, as RunAs) (*Master, Errors) {
	m := defaultMaster(etcDir)
	if err := checkEtc(etcDir, as); err != nil {
		return m, Errors{err}
	}
	path := filepath.Join(etcDir, MasterFileName)
	data, err := readFile(path, as)
	if errors.Is(err, fs.ErrNotExist) {
		return m, checkMasterDirs(m, nil, as)
	}
	if err != nil {
		return m, Errors{readError(path, err)}
	}
	rf, errs := parseINI(path, data)
	if len(errs) > 0 {
		return m, errs
	}
	known, warns, errs := checkKeys(rf, FileMaster)
	m.Warnings = warns
	l := &keyLoader{path: path, errs: errs, lines: map[string]int{}}
	var dsn, controlSocket *entry
	for _, e := range known {
		l.lines[e.Section+"."+e.Key] = e.Line
		v := e.Value
		switch e.Section + "." + e.Key {
		case "nsfd.node_name":
			if strings.ContainsAny(v, " \t") {
				l.fail(e, "must not contain blanks")
			} else {
				m.NodeName = v
			}
		case "nsfd.run_dir":
			m.RunDir = resolve(m.Dir, v)
		case "nsfd.control_socket":
			controlSocket = &e
		case "nsfd.control_group":
			m.ControlGroup = v
		case "nsfd.metrics_addr":
			if err := checkHostPort(v); err != nil {
				l.fail(e, err.Error())
			} else {
				m.MetricsAddr = v
			}
		case "nsfd.process_backend":
			l.oneOf(e, &m.ProcessBackend, processBackends)
		case "nsfd.http_addr":
			if err := checkHostPort(v); err != nil {
				l.fail(e, err.Error())
			} else {
				m.HTTPAddr = v
			}
		case "nsfd.http_tls_cert":
			m.HTTPTLSCert = resolve(m.Dir, v)
		case "nsfd.http_tls_key":
			m.HTTPTLSKey = resolve(m.Dir, v)
		case "nsfd.http_users":
			m.HTTPUsers = resolve(m.Dir, v)
		case "registry.type":
			l.oneOf(e, &m.Registry.Type, registryTypes)
		case "registry.dsn":
			dsn = &e
		case "registry.heartbeat":
			l.duration(e, &m.Registry.Heartbeat)
		case "log.target":
			l.oneOf(e, &m.Log.Target, logTargets)
		case "log.file":
			m.Log.File = resolve(m.Dir, v)
		case "log.format":
			l.oneOf(e, &m.Log.Format, logFormats)
		case "log.level":
			if lv, err := parseLogLevel(v); err != nil {
				l.fail(e, err.Error())
			} else {
				m.Log.Level = lv
			}
		case "log.max_size":
			if n, err := parseSize(v); err != nil {
				l.fail(e, err.Error())
			} else {
				m.Log.MaxSize = n
			}
		case "log.max_files":
			l.count(e, &m.Log.MaxFiles)
		case "log.syslog_addr":
			if err := checkSyslogAddr(v); err != nil {
				l.fail(e, err.Error())
			} else {
				m.Log.SyslogAddr = v
			}
		case "log.syslog_ident":
			m.Log.SyslogIdent = v
		case "log.syslog_facility":
			l.oneOf(e, &m.Log.SyslogFacility, syslogFacilities)
		default:
			l.fail(e, "internal error: no loader for this key")
		}
	}
	m.ControlSocket = filepath.Join(m.RunDir, DefaultControlSocketName)
	if controlSocket != nil {
		m.ControlSocket = resolve(m.Dir, controlSocket.Value)
	}
	if dsn != nil {
		m.Registry.DSN = dsn.Value
	}
	l.errs = append(l.errs, validateMaster(m, l, dsn)...)
	l.errs = append(l.errs, validateHTTP(m, l, as)...)
	if m.Registry.Type == "sqlite" {
		m.Registry.DSN = resolve(m.Dir, m.Registry.DSN)
	}
	l.errs = append(l.errs, checkMasterDirs(m, l, as)...)
	sortErrors(l.errs)
	return m, l.errs
}
