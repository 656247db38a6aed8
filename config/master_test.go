package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadMasterDefaults(t *testing.T) {
	etc := filepath.Join(t.TempDir(), "etc")
	m, err := LoadMaster(etc) // neither the directory nor nsfd.ini exist
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	root := filepath.Dir(etc)
	want := &Master{
		File:          filepath.Join(etc, "nsfd.ini"),
		Dir:           etc,
		NodeName:      host,
		RunDir:        filepath.Join(root, "var/run"),
		ControlSocket: filepath.Join(root, "var/run/nsfd.sock"),
		Registry:      Registry{Type: "sqlite", DSN: filepath.Join(root, "var/registry.db"), Heartbeat: 5 * time.Second},
		Log: Log{Target: "file", File: filepath.Join(root, "var/log/nsfd.log"), Format: "text", Level: "info",
			SyslogIdent: "nsfd", SyslogFacility: "daemon"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %+v\nwant %+v", m, want)
	}
}

func TestLoadMasterRelativeDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	m, err := LoadMaster("etc")
	if err != nil {
		t.Fatal(err)
	}
	if m.Dir != filepath.Join(dir, "etc") || m.RunDir != filepath.Join(dir, "var/run") {
		t.Errorf("Dir %q RunDir %q", m.Dir, m.RunDir)
	}
}

func TestLoadMasterDesignExample(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, MasterFileName, `; etc/nsfd.ini
[nsfd]
node_name      = ; default: hostname
run_dir        = ../var/run
control_socket = ../var/run/nsfd.sock
[registry]
type      = sqlite              ; sqlite | postgres
dsn       = ../var/registry.db  ; or postgres://user@host/db
heartbeat = 5s
[log]
target = file                   ; file | syslog | stderr
file   = ../var/log/nsfd.log
format = text                   ; text | json
level  = info
`)
	m, err := LoadMaster(etc)
	if err != nil {
		t.Fatal(err)
	}
	def := defaultMaster(etc)
	if !reflect.DeepEqual(m, def) {
		t.Errorf("the DESIGN.md example, which spells out the defaults, gives\n%+v\nwant\n%+v", m, def)
	}
}

func TestLoadMasterEverything(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, MasterFileName, `[nsfd]
node_name = alpha
run_dir = /run/nsfd
control_group = nsfd
metrics_addr = 127.0.0.1:9100
process_backend = Portable
[registry]
type = postgres
dsn = postgres://nsfd:secret@db.example/nsfd?sslmode=require
heartbeat = 2
[log]
target = syslog
file = log/nsfd.log
format = json
level = 4
max_size = 100M
max_files = 7
syslog_addr = udp://loghost:514
syslog_ident = nsfd-alpha
syslog_facility = local3
`)
	m, err := LoadMaster(etc)
	if err != nil {
		t.Fatal(err)
	}
	want := &Master{
		File: filepath.Join(etc, "nsfd.ini"), Dir: etc, NodeName: "alpha",
		RunDir: "/run/nsfd", ControlSocket: "/run/nsfd/nsfd.sock", ControlGroup: "nsfd", MetricsAddr: "127.0.0.1:9100", ProcessBackend: "portable",
		Registry: Registry{Type: "postgres", DSN: "postgres://nsfd:secret@db.example/nsfd?sslmode=require", Heartbeat: 2 * time.Second},
		Log: Log{Target: "syslog", File: filepath.Join(etc, "log/nsfd.log"), Format: "json", Level: "debug",
			MaxSize: 100 << 20, MaxFiles: 7, SyslogAddr: "udp://loghost:514", SyslogIdent: "nsfd-alpha", SyslogFacility: "local3"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %+v\nwant %+v", m, want)
	}
}

func TestLoadMasterErrors(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"node_name = x\n", `nsfd.ini:1: key "node_name": key outside a section (it belongs in [nsfd])`},
		{"[nsfd]\nlevel = 1\n", `nsfd.ini:2: key "level": unknown key in [nsfd] (it belongs in [log])`},
		{"[nsfd]\nrun_dri = x\n", `nsfd.ini:2: key "run_dri": unknown key in [nsfd] (did you mean "run_dir"?)`},
		{"[logs]\n", `nsfd.ini:1: unknown section [logs] (did you mean [log]?)`},
		{"[env]\n", `nsfd.ini:1: unknown section [env]`},
		{"[nsfd]\nmetrics_addr = 9100\n", `nsfd.ini:2: key "metrics_addr": "9100" is not host:port`},
		{"[nsfd]\nprocess_backend = kqueue\n", `nsfd.ini:2: key "process_backend": unknown value "kqueue" (want pump or portable)`},
		{"[nsfd]\nnode_name = a b\n", `nsfd.ini:2: key "node_name": must not contain blanks`},
		{"[registry]\ntype = postgres\ndsn = /var/x.db\n", `nsfd.ini:3: key "dsn": "/var/x.db" is not a PostgreSQL URL (postgres://user@host/db) or key=value string`},
		{"[registry]\ndsn = postgres://u:pw@h/db\n", `nsfd.ini:2: key "dsn": a PostgreSQL DSN with type sqlite (set type = postgres)`},
		{"[registry]\nheartbeat = 0\n", `nsfd.ini:2: key "heartbeat": must be positive`},
		{"[log]\nmax_files = -1\n", `nsfd.ini:2: key "max_files": must not be negative (got -1)`},
		{"[log]\nsyslog_addr = tcp://host\n", `nsfd.ini:2: key "syslog_addr": "tcp://host": tcp needs a host and a numeric port`},
		{"[log]\nsyslog_addr = unix://dev/log\n", `nsfd.ini:2: key "syslog_addr": "unix://dev/log": unix needs an absolute path`},
		{"[log]\nlevel = info\nlevel = debug\n", `nsfd.ini:3: key "level": set more than once (first on line 2)`},
		{"[log\n", `nsfd.ini:1: syntax error: section header without "]"`},
	} {
		etc := t.TempDir()
		writeFile(t, etc, MasterFileName, tt.text)
		_, err := LoadMaster(etc)
		if err == nil || !strings.Contains(err.Error()+"\n", etc+"/"+tt.want+"\n") {
			t.Errorf("%q: err = %v\nwant %s", tt.text, err, tt.want)
		}
	}
}

func TestLoadMasterPostgresKeyValueDSN(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, MasterFileName, "[registry]\ntype = postgres\ndsn = host=db user=nsfd password=secret dbname=nsfd\n")
	m, err := LoadMaster(etc)
	if err != nil {
		t.Fatal(err)
	}
	if m.Registry.DSN != "host=db user=nsfd password=secret dbname=nsfd" {
		t.Errorf("DSN = %q", m.Registry.DSN)
	}
	writeFile(t, etc, MasterFileName, "[registry]\ntype = postgres\ndsn = postgres://u:secret@h:port/db\n")
	if _, err := LoadMaster(etc); err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "u:xxxxx@h") {
		t.Errorf("err = %v; want an error without the password", err)
	}
}

func TestSystemEtcDefaults(t *testing.T) {
	m := defaultMaster("/etc/nsfd")
	if m.RunDir != SystemRunDir || m.Log.File != SystemLogFile || m.Registry.DSN != SystemRegistryDSN {
		t.Errorf("/etc/nsfd: run_dir %s, log %s, registry %s; want the FHS paths", m.RunDir, m.Log.File, m.Registry.DSN)
	}
	if m.ControlSocket != SystemRunDir+"/"+DefaultControlSocketName {
		t.Errorf("control socket %s", m.ControlSocket)
	}
	for _, dir := range []string{"/etcetera/nsfd", "/srv/etc", "/etc"} {
		if m := defaultMaster(dir); m.RunDir != filepath.Join(filepath.Dir(dir), "var", "run") {
			t.Errorf("%s: run_dir %s, want ../var/run beside it", dir, m.RunDir)
		}
	}
}
