package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// designEcho is etc/echo.ini of DESIGN.md.
// The comment on the command line moved to a line of its own: a command
// takes no inline comment.
const designEcho = `; etc/echo.ini
; argv, split like a shell would, never run through one
command = ../bin/echo --greeting hi
port    = 127.0.0.1:7001                ; Net::Server syntax, repeatable
min_servers = 2
max_servers = 8
min_spare_servers = 1
max_spare_servers = 4
max_requests = 1000
type = notify                           ; simple | notify
graceful_timeout = 10s
user = nobody
[env]
GREETING = hi
`

func TestLoadDaemonDesignExample(t *testing.T) {
	needRoot(t)
	fakeUsers(t)
	dir := openTempDir(t)
	etc := filepath.Join(dir, "etc")
	path := writeFile(t, etc, "echo.ini", designEcho)
	d, err := LoadDaemon(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := newDaemon("echo", path)
	want.Command = []string{filepath.Join(dir, "bin", "echo"), "--greeting", "hi"}
	want.Listeners = []Listen{{Proto: "tcp", Addr: "127.0.0.1:7001"}}
	want.MinServers, want.MaxServers, want.MinSpareServers, want.MaxSpareServers = 2, 8, 1, 4
	want.Type = TypeNotify
	want.GracefulTimeout = 10 * time.Second
	want.User = "nobody"
	want.Creds = Creds{UID: 65534, GID: 65534}
	want.Env = []string{"GREETING=hi"}
	want.Hash = d.Hash
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
	if len(d.Hash) != 64 {
		t.Errorf("Hash = %q", d.Hash)
	}
}

func TestLoadDaemonEverything(t *testing.T) {
	needRoot(t)
	fakeUsers(t)
	etc := openTempDir(t)
	writeFile(t, etc, "env/app.env", "export A=from-file\nB='file b'\n")
	path := writeFile(t, etc, "app.ini", `command = bin/app -v "two words"
daemon_name = application
port = 7001
port = [::1]:7002/udp
port = sock/app.sock|unix
host = 127.0.0.1
ipv = 4
listen = 128
socket_mode = 0600
type = notify
min_servers = 1
max_servers = 3
min_spare_servers = 0
max_spare_servers = 2
max_requests = 0
max_requests_jitter = 50
min_child_ttl = 2
ready_timeout = 1m
graceful_timeout = 0
start_seconds = 500ms
start_retries = 0
backoff_initial = 1s
backoff_max = 1m
watchdog = 30s
user = app
group = app
groups = adm, www-data video
chroot = jail
umask = 027
cwd = /srv/app
limit_nofile = 65536
limit_core = unlimited
env_file = env/app.env
encoding = json+gzip
requires = db, cache db
[env]
B = from-ini
C = 
`)
	_, err := LoadDaemon(path, nil)
	if err == nil {
		t.Fatalf("want an error: [::1] with ipv = 4")
	}
	if got := err.Error(); got != path+`:4: key "port": "[::1]:7002/udp": IPv4 with the IPv6 address ::1` {
		t.Fatalf("err = %v", err)
	}
	text, _ := os.ReadFile(path)
	writeFile(t, etc, "app.ini", strings.Replace(string(text), "[::1]:7002/udp", "localhost:7002/udp", 1))
	d, err := LoadDaemon(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := newDaemon("application", path)
	want.Command = []string{filepath.Join(etc, "bin/app"), "-v", "two words"}
	want.Listeners = []Listen{
		{Proto: "tcp", Addr: "127.0.0.1:7001", IPv: 4},
		{Proto: "udp", Addr: "localhost:7002", IPv: 4},
		{Proto: "unix", Addr: filepath.Join(etc, "sock/app.sock")},
	}
	want.Backlog, want.SocketMode, want.Type = 128, 0o600, TypeNotify
	want.MinServers, want.MaxServers, want.MinSpareServers, want.MaxSpareServers = 1, 3, 0, 2
	want.MaxRequests, want.MaxRequestsJitter, want.MinChildTTL = 0, 50, 2*time.Second
	want.ReadyTimeout, want.GracefulTimeout, want.StartPeriod, want.StartRetries = time.Minute, 0, 500*time.Millisecond, 0
	want.BackoffInitial, want.BackoffMax, want.Watchdog = time.Second, time.Minute, 30*time.Second
	want.User, want.Group, want.Groups = "app", "app", []string{"adm", "www-data", "video"}
	want.Creds = Creds{UID: 1000, GID: 1000, Groups: []int{4, 33, 44}}
	want.Chroot, want.Umask, want.Cwd = filepath.Join(etc, "jail"), 0o27, "/srv/app"
	want.Limits = map[string]uint64{"nofile": 65536, "core": Unlimited}
	want.Env = []string{"A=from-file", "B=from-ini", "C="}
	want.Encoding = "json+gzip"
	want.Requires = []string{"db", "cache"}
	want.Hash = d.Hash
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
}

func TestLoadDaemonConfFormat(t *testing.T) {
	// The queue daemon's conf of Net::Server::Framework, as it ships.
	needRoot(t)
	fakeUsers(t)
	etc := openTempDir(t)
	path := writeFile(t, etc, "queue.conf", `### Net::Server conf
min_servers 5
min_spare_servers 2
max_spare_servers 5
max_servers 20
max_requests 100
port var/run/queue.sock
proto unix
log_file var/log/server.log
log_level 4
daemon_name queue
node_name HOSTNAME
user nobody
group nogroup
setsid 1
pid_file var/run/queue.pid
builtin queue
`)
	d, err := LoadDaemon(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "queue" || d.Builtin != "queue" || d.MaxServers != 20 || d.MaxRequests != 100 || d.User != "nobody" {
		t.Errorf("daemon = %+v", d)
	}
	if want := []Listen{{Proto: "unix", Addr: filepath.Join(etc, "var/run/queue.sock")}}; !reflect.DeepEqual(d.Listeners, want) {
		t.Errorf("Listeners = %v, want %v", d.Listeners, want)
	}
	var warnings []string
	for _, w := range d.Warnings {
		warnings = append(warnings, strings.TrimPrefix(w.Error(), etc+"/"))
	}
	want := []string{
		`queue.conf:9: key "log_file": ignored under nsfd: workers' output goes to the central log; see [log] in nsfd.ini`,
		`queue.conf:10: key "log_level": ignored under nsfd: the central log's level applies; see [log] in nsfd.ini`,
		`queue.conf:12: key "node_name": ignored under nsfd: the node name is set in nsfd.ini`,
		`queue.conf:15: key "setsid": ignored under nsfd: the master does not fork into the background; the service manager runs it`,
		`queue.conf:16: key "pid_file": ignored under nsfd: the master handles this; see ` + "`nsfd status`",
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}

	// The same file as INI loads the same daemon.
	ini := writeFile(t, etc, "queue2.ini", `min_servers = 5
min_spare_servers = 2
max_spare_servers = 5
max_servers = 20
max_requests = 100
port = var/run/queue.sock
proto = unix
log_file = var/log/server.log
log_level = 4
daemon_name = queue
node_name = HOSTNAME
user = nobody
group = nogroup
setsid = 1
pid_file = var/run/queue.pid
builtin = queue
`)
	d2, err := LoadDaemon(ini, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Hash != d.Hash {
		t.Errorf("conf and INI differ:\n%+v\n%+v", d, d2)
	}
}

func TestLoadDaemonAllErrors(t *testing.T) {
	etc := t.TempDir()
	path := writeFile(t, etc, "echo.ini", `command = /bin/cat
port = 70000
min_sever = 2
max_requests = many
type = forking
[env]
1X = y
`)
	_, err := LoadDaemon(path, nil)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %T %v, want Errors", err, err)
	}
	var got []string
	for _, e := range es {
		got = append(got, strings.TrimPrefix(e.Error(), etc+"/"))
	}
	want := []string{
		`echo.ini:2: key "port": "70000": port 70000 is out of range 0-65535`,
		`echo.ini:3: key "min_sever": unknown key (did you mean "min_servers"?)`,
		`echo.ini:4: key "max_requests": "many" is not an integer`,
		`echo.ini:5: key "type": unknown value "forking" (want simple or notify)`,
		`echo.ini:7: key "1X": not a valid environment variable name`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadDaemonTypoHints(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"min_sever = 3", `x.ini:1: key "min_sever": unknown key (did you mean "min_servers"?)`},
		{"max_spare_server = 3", `x.ini:1: key "max_spare_server": unknown key (did you mean "max_spare_servers"?)`},
		{"Port = 7001", `x.ini:1: key "Port": unknown key (did you mean "port"?)`},
		{"gracefull_timeout = 1s", `x.ini:1: key "gracefull_timeout": unknown key (did you mean "graceful_timeout"?)`},
		{"envfile = x", `x.ini:1: key "envfile": unknown key (did you mean "env_file"?)`},
		{"backgrund = 1", `x.ini:1: key "backgrund": unknown key (did you mean "background"?)`},
		{"allow = 10.0.0.0/8", `x.ini:1: key "allow": unknown key`},
		{"workers = 4", `x.ini:1: key "workers": unknown key`},
		{"[Env]\nA = 1", `x.ini:1: unknown section [Env] (did you mean [env]?)`},
		{"[environment]\nA = 1", `x.ini:1: unknown section [environment] (did you mean [env]?)`},
		{"[log]\nlevel = 1", `x.ini:1: unknown section [log]`},
	} {
		etc := t.TempDir()
		path := writeFile(t, etc, "x.ini", "command = /bin/cat\nport = 1\n")
		os.WriteFile(path, []byte(tt.text+"\ncommand = /bin/cat\nport = 1\n"), 0o644)
		if strings.HasPrefix(tt.text, "[") {
			os.WriteFile(path, []byte(tt.text+"\n"), 0o644)
		}
		_, err := LoadDaemon(path, nil)
		if err == nil || !strings.Contains(err.Error()+"\n", etc+"/"+tt.want+"\n") {
			t.Errorf("%q: err = %v\nwant %s", tt.text, err, tt.want)
		}
	}
}

func TestLoadDaemonDefaults(t *testing.T) {
	etc := t.TempDir()
	path := writeFile(t, etc, "echo.ini", "command = cat\nport = 7001\nuser =\n")
	d, err := LoadDaemon(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := newDaemon("echo", path)
	want.Command = []string{"cat"} // no slash: left to PATH
	want.Listeners = []Listen{{Proto: "tcp", Addr: ":7001"}}
	want.Hash = d.Hash
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
	if d.Umask != -1 || d.MinServers != DefaultMinServers || d.SocketMode != DefaultSocketMode {
		t.Errorf("defaults: %+v", d)
	}
}

func TestLoadDaemonBuiltinSocket(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, MasterFileName, "[nsfd]\nrun_dir = /run/nsfd\n")
	m, err := LoadMaster(etc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDaemon(writeFile(t, etc, "queue.ini", "builtin = queue\n"), m)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Listen{{Proto: "unix", Addr: "/run/nsfd/queue.sock"}}; !reflect.DeepEqual(d.Listeners, want) {
		t.Errorf("Listeners = %v, want %v", d.Listeners, want)
	}
	if len(d.Command) != 0 {
		t.Errorf("Command = %q", d.Command)
	}
}

func TestLoadDaemonNoCommand(t *testing.T) {
	etc := t.TempDir()
	_, err := LoadDaemon(writeFile(t, etc, "echo.ini", "port = 1\n"), nil)
	if !errors.Is(err, ErrNoCommand) {
		t.Errorf("err = %v, want ErrNoCommand", err)
	}
	_, err = LoadDaemon(filepath.Join(etc, "missing.ini"), nil)
	if err == nil || err.Error() != filepath.Join(etc, "missing.ini")+": cannot read: no such file or directory" {
		t.Errorf("err = %v", err)
	}
}

func TestLoadDaemonEnvFile(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, "conf/bad.env", "OK=1\nbroken line\n")
	path := writeFile(t, etc, "echo.ini", "command = /bin/cat\nport = 1\nenv_file = conf/bad.env\n")
	_, err := LoadDaemon(path, nil)
	if want := filepath.Join(etc, "conf/bad.env") + `:2: not a "KEY=VALUE" line`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	os.WriteFile(path, []byte("command = /bin/cat\nport = 1\nenv_file = nope.env\n"), 0o644)
	_, err = LoadDaemon(path, nil)
	if want := path + `:3: key "env_file": "nope.env" does not exist`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestLoadDaemonRelativePathAsGiven(t *testing.T) {
	// Errors name the file as the caller gave it; the Daemon holds absolute paths.
	etc := t.TempDir()
	writeFile(t, etc, "echo.ini", "command = ./echo\nport = 1\n")
	t.Chdir(etc)
	d, err := LoadDaemon("echo.ini", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.File != filepath.Join(etc, "echo.ini") || d.Dir != etc || d.Command[0] != filepath.Join(etc, "echo") {
		t.Errorf("paths: %q %q %q", d.File, d.Dir, d.Command)
	}
	os.WriteFile("echo.ini", []byte("bogus = 1\n"), 0o644)
	_, err = LoadDaemon("echo.ini", nil)
	if err == nil || !strings.Contains(err.Error(), "\n"+`echo.ini:1: key "bogus": unknown key`) {
		t.Errorf("err = %v", err)
	}
}

func TestHashAndPoolOnlyChange(t *testing.T) {
	needRoot(t)
	fakeUsers(t)
	etc := openTempDir(t)
	load := func(text string) *Daemon {
		t.Helper()
		d, err := LoadDaemon(writeFile(t, etc, "echo.ini", text), nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := load(designEcho)
	noUser := load(strings.Replace(designEcho, "user = nobody\n", "", 1))
	if noUser.Hash == base.Hash {
		t.Fatal("dropping user did not change the hash")
	}
	reordered := load("# comments and order do not matter\nuser = nobody\n" + designEcho[strings.Index(designEcho, "command"):strings.Index(designEcho, "user =")] + "[env]\nGREETING = hi\n")
	if reordered.Hash != base.Hash {
		t.Errorf("reordering keys changed the hash")
	}
	if !base.PoolOnlyChange(reordered) {
		t.Errorf("PoolOnlyChange of identical configs = false")
	}

	pool := load(strings.NewReplacer("max_servers = 8", "max_servers = 16", "max_requests = 1000", "max_requests = 10").Replace(designEcho))
	if pool.Hash == base.Hash || !pool.PoolOnlyChange(base) {
		t.Errorf("pool change: hash equal %v, PoolOnlyChange %v", pool.Hash == base.Hash, pool.PoolOnlyChange(base))
	}
	for _, change := range [][2]string{
		{"GREETING = hi", "GREETING = ho"},
		{"127.0.0.1:7001", "127.0.0.1:7002"},
		{"--greeting hi", "--greeting ho"},
		{"type = notify", "type = simple"},
		{"graceful_timeout = 10s", "graceful_timeout = 11s"},
	} {
		d := load(strings.Replace(designEcho, change[0], change[1], 1))
		if d.Hash == base.Hash || d.PoolOnlyChange(base) {
			t.Errorf("%s -> %s: hash equal %v, PoolOnlyChange %v", change[0], change[1], d.Hash == base.Hash, d.PoolOnlyChange(base))
		}
	}
	if base.PoolOnlyChange(nil) {
		t.Error("PoolOnlyChange(nil) = true")
	}
	// The file's path is not part of the configuration.
	moved := *base
	moved.File, moved.Warnings = "/elsewhere/echo.ini", []*Error{{Msg: "w"}}
	if moved.hash() != base.Hash {
		t.Error("File or Warnings changed the hash")
	}
}

func TestResources(t *testing.T) {
	for _, tc := range []struct {
		lines string
		want  Resources
	}{
		{"", Resources{}},
		{"memory_max = 64M\nmemory_high = 48M\npids_max = 100\ncpu_weight = 200\ncpu_max = 50%\nmax_rss = 32M\n",
			Resources{MemoryMax: 64 << 20, MemoryHigh: 48 << 20, PidsMax: 100, CPUWeight: 200, CPUMax: 0.5, MaxRSS: 32 << 20}},
		{"cpu_max = 200%\nmemory_max = 1G\n", Resources{CPUMax: 2, MemoryMax: 1 << 30}},
		{"cpu_max = 0\nmemory_max = 0\n", Resources{}},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "r.ini"), []byte("command = /bin/cat\nport = 127.0.0.1:7001\n"+tc.lines), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := LoadDaemon(filepath.Join(dir, "r.ini"), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.lines, err)
		}
		if d.Resources != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.lines, d.Resources, tc.want)
		}
	}
}
