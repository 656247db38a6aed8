package supervisor

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/worker"
)

// The reload diff, on fake pools: no process is started; the listeners
// are real UNIX sockets in the test's directory.

// TestReloadStartsDaemonsInDependencyOrder: a daemon starts after those it
// requires (a requires z: z first, although a sorts first), each pool gets
// its daemon's command, listeners, framework environment and the master's
// process backend, and is registered with its real endpoints.
func TestReloadStartsDaemonsInDependencyOrder(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("z.ini", tm.daemonFile("z.sock"))
	tm.write("a.ini", tm.daemonFile("a.sock", "requires = z", "[env]", "GREETING = hi"))
	r := tm.reload()
	if !slices.Equal(r.Added, []string{"a", "z"}) || len(r.Errors) != 0 {
		t.Fatalf("reload: %+v; want a and z added", r)
	}
	if got := tm.pools.madeOrder(); !slices.Equal(got, []string{"z", "a"}) {
		t.Errorf("pools made in the order %v, want z before a (a requires z)", got)
	}
	a := tm.pools.pool(t, "a")
	if got := a.Calls(); !slices.Equal(got, []string{"start"}) {
		t.Errorf("a's pool was asked %v, want start", got)
	}
	cfg := a.config()
	sock := filepath.Join(tm.dir, "a.sock")
	if !slices.Equal(cfg.Command, []string{"/bin/true"}) || len(cfg.Listeners) != 1 || cfg.Listeners[0].Addr.String() != sock {
		t.Errorf("a's pool config: command %q, listeners %v; want /bin/true on %s", cfg.Command, cfg.Listeners, sock)
	}
	for _, kv := range []string{"GREETING=hi", worker.EnvEncoding + "=json"} {
		if !slices.Contains(cfg.Env, kv) {
			t.Errorf("a's environment %q lacks %s", cfg.Env, kv)
		}
	}
	if cfg.Procs != tm.opts.Procs || cfg.Observer == nil || cfg.Output == nil {
		t.Errorf("a's pool lacks the master's process backend, observer or output")
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Errorf("a's listener does not accept: %v", err)
	} else {
		c.Close()
	}
	rec, ok := tm.registered("a")
	if !ok || len(rec.Endpoints) != 1 || rec.Endpoints[0].Address != sock || rec.State != registry.StateRunning {
		t.Errorf("a in the registry: %+v (kept %v); want running on %s", rec, ok, sock)
	}
}

// TestReloadAddsAndRemoves: a new file starts its daemon and touches no
// other; a removed file drains its daemon, closes its listener and
// unregisters it.
func TestReloadAddsAndRemoves(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	tm.write("b.ini", tm.daemonFile("b.sock"))
	r := tm.reload()
	if !slices.Equal(r.Added, []string{"b"}) || len(r.Removed)+len(r.Rolled)+len(r.Resized)+len(r.Errors) != 0 {
		t.Fatalf("reload after adding b.ini: %+v; want b added, nothing else", r)
	}
	if got := tm.pools.pool(t, "a").Calls(); !slices.Equal(got, []string{"start"}) {
		t.Errorf("adding b asked a's pool %v", got)
	}
	if got := tm.daemonNames(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("daemons %v, want a and b", got)
	}

	tm.remove("a.ini")
	r = tm.reload()
	if !slices.Equal(r.Removed, []string{"a"}) || len(r.Added)+len(r.Rolled)+len(r.Resized)+len(r.Errors) != 0 {
		t.Fatalf("reload after removing a.ini: %+v; want a removed, nothing else", r)
	}
	waitUntil(t, "a's drain", func() bool { return !slices.Contains(tm.daemonNames(), "a") })
	if got := tm.pools.pool(t, "a").Calls(); !slices.Equal(got, []string{"start", "stop"}) {
		t.Errorf("a's pool was asked %v, want start, stop", got)
	}
	if got := tm.pools.pool(t, "b").Calls(); !slices.Equal(got, []string{"start"}) {
		t.Errorf("removing a asked b's pool %v", got)
	}
	if _, err := os.Stat(filepath.Join(tm.dir, "a.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a's socket file is left after its drain: %v", err)
	}
	if _, kept := tm.registered("a"); kept {
		t.Error("a is still to be registered after its removal")
	}
}

// TestReloadChangeRollsTheSamePool: a change beyond pool sizes goes to the
// running pool (Update, which rolls the workers): a new listener is bound
// and handed over, the one that stays is the same socket, the one that
// went is closed after.
func TestReloadChangeRollsTheSamePool(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	kept := tm.pools.pool(t, "a").config().Listeners[0]

	text := tm.daemonFile("a.sock", "port = "+filepath.Join(tm.dir, "a2.sock")+"|unix")
	tm.write("a.ini", strings.Replace(text, "command = /bin/true", "command = /bin/true --new", 1))
	r := tm.reload()
	if !slices.Equal(r.Rolled, []string{"a"}) || len(r.Resized)+len(r.Added)+len(r.Removed)+len(r.Errors) != 0 {
		t.Fatalf("reload: %+v; want a rolled, nothing else", r)
	}
	if got := tm.pools.madeOrder(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("pools made: %v; want a's one pool, rolled in place", got)
	}
	p := tm.pools.pool(t, "a")
	if got := p.Calls(); !slices.Equal(got, []string{"start", "update"}) {
		t.Fatalf("a's pool was asked %v, want start, update", got)
	}
	cfg := p.config()
	if !slices.Equal(cfg.Command, []string{"/bin/true", "--new"}) || len(cfg.Listeners) != 2 || cfg.Listeners[0] != kept {
		t.Errorf("update: command %q, listeners %v; want the new command, a.sock kept as it was, a2.sock", cfg.Command, cfg.Listeners)
	}
	if c, err := net.Dial("unix", filepath.Join(tm.dir, "a2.sock")); err != nil {
		t.Errorf("the new listener does not accept: %v", err)
	} else {
		c.Close()
	}

	// Back to one socket, a2.sock: a.sock is closed once handed over.
	tm.write("a.ini", strings.Replace(tm.daemonFile("a2.sock"), "command = /bin/true", "command = /bin/true --new", 1))
	if r := tm.reload(); !slices.Equal(r.Rolled, []string{"a"}) {
		t.Fatalf("reload: %+v; want a rolled", r)
	}
	if _, err := os.Stat(filepath.Join(tm.dir, "a.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the listener that went is still open: %v", err)
	}
	if rec, _ := tm.registered("a"); len(rec.Endpoints) != 1 || rec.Endpoints[0].Address != filepath.Join(tm.dir, "a2.sock") {
		t.Errorf("registered endpoints %+v, want a2.sock only", rec.Endpoints)
	}
}

// TestReloadPoolOnlyChangeResizesInPlace: a change of pool sizes and
// max_requests only is applied in place (SetPolicy): no worker rolls.
func TestReloadPoolOnlyChangeResizesInPlace(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	text := strings.NewReplacer("min_servers = 1", "min_servers = 3", "max_servers = 2", "max_servers = 6").Replace(tm.daemonFile("a.sock", "max_requests = 77"))
	tm.write("a.ini", text)
	r := tm.reload()
	if !slices.Equal(r.Resized, []string{"a"}) || len(r.Rolled)+len(r.Added)+len(r.Removed)+len(r.Errors) != 0 {
		t.Fatalf("reload: %+v; want a resized, nothing else", r)
	}
	p := tm.pools.pool(t, "a")
	if got := p.Calls(); !slices.Equal(got, []string{"start", "set-policy"}) {
		t.Fatalf("a's pool was asked %v, want start, set-policy", got)
	}
	p.mu.Lock()
	policy, maxReq := p.policy, p.maxRequests
	p.mu.Unlock()
	if policy.MinServers != 3 || policy.MaxServers != 6 || maxReq != 77 {
		t.Errorf("policy %+v, max_requests %d; want 3..6, 77", policy, maxReq)
	}
	if d := tm.daemon("a"); d == nil || d.Policy.MinServers != 3 {
		t.Errorf("status: %+v; want min_servers 3", d)
	}
}

// TestReloadBrokenFileKeepsTheLastGoodConfig: a daemon whose file stops
// loading keeps running on its last good config, with the error in status;
// once the file loads again, it applies. A broken new file starts nothing
// and is listed.
func TestReloadBrokenFileKeepsTheLastGoodConfig(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	hash := tm.configHash("a")

	tm.write("a.ini", tm.daemonFile("a.sock", "no_such_key = 1"))
	tm.write("b.ini", "command = /bin/true\n") // no port
	r := tm.reload()
	if r.Errors[tm.file("a.ini")] == "" || r.Errors[tm.file("b.ini")] == "" || len(r.Added)+len(r.Removed)+len(r.Rolled)+len(r.Resized) != 0 {
		t.Fatalf("reload: %+v; want errors for a.ini and b.ini, nothing else", r)
	}
	if got := tm.pools.pool(t, "a").Calls(); !slices.Equal(got, []string{"start"}) {
		t.Errorf("a's pool was asked %v after its file broke; want nothing more", got)
	}
	if got := tm.pools.madeOrder(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("pools made %v; want none for the broken b.ini", got)
	}
	st := tm.status()
	if len(st.Daemons) != 1 || st.Daemons[0].State != "running" || !strings.Contains(st.Daemons[0].ConfigError, "no_such_key") {
		t.Errorf("status daemons %+v; want a running with its file's error", st.Daemons)
	}
	if len(st.Errors) != 1 || st.Errors[0].File != tm.file("b.ini") {
		t.Errorf("status errors %+v; want b.ini", st.Errors)
	}
	if tm.configHash("a") != hash {
		t.Error("a's config changed although its file does not load")
	}

	tm.write("a.ini", strings.Replace(tm.daemonFile("a.sock"), "command = /bin/true", "command = /bin/true --fixed", 1))
	if r := tm.reload(); !slices.Equal(r.Rolled, []string{"a"}) || r.Errors[tm.file("a.ini")] != "" {
		t.Fatalf("reload of the fixed file: %+v; want a rolled", r)
	}
	if d := tm.daemon("a"); d.ConfigError != "" {
		t.Errorf("the error stays after the fix: %q", d.ConfigError)
	}
}

// TestReloadBrokenMasterFileChangesNothing: while nsfd.ini does not load,
// a reload applies nothing, not even daemon files that load.
func TestReloadBrokenMasterFileChangesNothing(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	tm.write("nsfd.ini", testMasterIni+"bogus = 1\n")
	tm.write("b.ini", tm.daemonFile("b.sock"))
	tm.remove("a.ini")
	r := tm.reload()
	if r.Errors[tm.file("nsfd.ini")] == "" || len(r.Added)+len(r.Removed) != 0 {
		t.Fatalf("reload: %+v; want nsfd.ini's error, nothing added or removed", r)
	}
	if got := tm.pools.madeOrder(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("pools made %v; want a's only", got)
	}
	if st := tm.status(); st.ConfigError == "" || len(st.Daemons) != 1 {
		t.Errorf("status: %q, daemons %+v; want nsfd.ini's error and a still there", st.ConfigError, st.Daemons)
	}
	tm.write("nsfd.ini", testMasterIni)
	if r := tm.reload(); !slices.Equal(r.Added, []string{"b"}) || !slices.Equal(r.Removed, []string{"a"}) {
		t.Errorf("reload once nsfd.ini loads: %+v; want b added, a removed", r)
	}
}

// TestReloadFailedStartIsAnErrorAndRetried: a daemon whose pool cannot be
// made is not kept, its listener is closed, the error is in the reload's
// answer and the status; the next reload tries again.
func TestReloadFailedStartIsAnErrorAndRetried(t *testing.T) {
	tm := startTestMaster(t, nil, func(f *fakePools) { f.fail["b"] = errors.New("no pool today") })
	tm.write("b.ini", tm.daemonFile("b.sock"))
	r := tm.reload()
	if !strings.Contains(r.Errors[tm.file("b.ini")], "no pool today") || len(r.Added) != 0 {
		t.Fatalf("reload: %+v; want b.ini's start error", r)
	}
	if st := tm.status(); len(st.Daemons) != 0 || len(st.Errors) != 1 || !strings.Contains(st.Errors[0].Error, "no pool today") {
		t.Errorf("status: daemons %+v, errors %+v; want none, and b.ini's error", st.Daemons, st.Errors)
	}
	if _, err := os.Stat(filepath.Join(tm.dir, "b.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("b's listener is left open: %v", err)
	}
	tm.pools.mu.Lock()
	delete(tm.pools.fail, "b")
	tm.pools.mu.Unlock()
	if r := tm.reload(); !slices.Equal(r.Added, []string{"b"}) || len(r.Errors) != 0 {
		t.Errorf("next reload: %+v; want b added", r)
	}
	if st := tm.status(); len(st.Errors) != 0 {
		t.Errorf("status errors %+v after b started", st.Errors)
	}
}

// TestStoppedDaemonTakesItsNewConfigWhenStarted: a daemon stopped by hand
// stays stopped across a reload that changes it, and starts on the new
// config.
func TestStoppedDaemonTakesItsNewConfigWhenStarted(t *testing.T) {
	tm := startTestMaster(t, nil, nil)
	tm.write("a.ini", tm.daemonFile("a.sock"))
	tm.reload()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tm.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	tm.write("a.ini", strings.Replace(tm.daemonFile("a.sock"), "command = /bin/true", "command = /bin/true --v2", 1))
	if r := tm.reload(); len(r.Added)+len(r.Rolled)+len(r.Resized)+len(r.Errors) != 0 {
		t.Fatalf("reload of a stopped daemon: %+v; want nothing applied", r)
	}
	if d := tm.daemon("a"); d.State != "stopped" {
		t.Fatalf("a is %s after the reload, want stopped", d.State)
	}
	if err := tm.Start(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := tm.pools.madeOrder(); !slices.Equal(got, []string{"a", "a"}) {
		t.Fatalf("pools made %v; want a second one for a", got)
	}
	if cmd := tm.pools.pool(t, "a").config().Command; !slices.Equal(cmd, []string{"/bin/true", "--v2"}) {
		t.Errorf("a started with %q, want the new command", cmd)
	}
}
