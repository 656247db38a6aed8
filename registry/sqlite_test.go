package registry_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/sqlite"
)

// Environment of the helper process TestSQLiteProcesses starts: the test
// binary re-run as a master writing to a shared registry.
const (
	helperEnv     = "NSFD_REGISTRY_TEST_HELPER"
	helperDSNEnv  = "NSFD_REGISTRY_TEST_DSN"
	helperNodeEnv = "NSFD_REGISTRY_TEST_NODE"
)

// helperMain runs the helper process's job if the environment asks for it,
// and exits.
func helperMain() bool {
	var job func(registry.Registry) error
	switch os.Getenv(helperEnv) {
	case "churn":
		job = func(r registry.Registry) error { return churn(r, os.Getenv(helperNodeEnv), 50) }
	case "read-only":
		job = readOnly
	default:
		return false
	}
	err := func() error {
		r, err := registry.Open(context.Background(), registry.TypeSQLite, os.Getenv(helperDSNEnv))
		if err != nil {
			return err
		}
		return errors.Join(job(r), r.Close())
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// readOnly is a client that may read the registry but not write it.
func readOnly(r registry.Registry) error {
	eps, err := r.Resolve(context.Background(), "echo", registry.ResolveOptions{})
	if err != nil {
		return err
	}
	if len(eps) != 1 || eps[0].Address != "127.0.0.1:7001" {
		return fmt.Errorf("resolve: %+v", eps)
	}
	if err := r.Register(context.Background(), daemon("n1", "intruder", 1, "tcp 127.0.0.1:1")); err == nil {
		return errors.New("register: no error from a read-only client")
	}
	return nil
}

// TestSQLiteGroupReader: a client in the registry file's group (a worker's
// client, dropped to its user) resolves names with no master running, though
// it can write neither the file nor its directory.
func TestSQLiteGroupReader(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client as another user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody to run a client as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	root, err := os.MkdirTemp("", "nsfd-registry-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	must(t, os.Chmod(root, 0o755))
	dir := filepath.Join(root, "var")
	path := filepath.Join(dir, "registry.db")
	master := open(t, registry.TypeSQLite, path)
	register(t, master, daemon("n1", "echo", 100, "tcp 127.0.0.1:7001"))
	must(t, master.Close()) // the master is down
	for _, p := range []string{dir, path, path + "-wal", path + "-shm"} {
		must(t, os.Chown(p, 0, gid))
	}

	// The test binary, where the other user can run it.
	bin := filepath.Join(root, "registry.test")
	exe, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, exe, 0o755))
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=read-only", helperDSNEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("client as nobody: %v\n%s", err, out)
	}
}

// TestSQLiteProcesses has several processes write one registry file at once,
// as the master, `nsfd resolve` and clients do: none may fail with
// SQLITE_BUSY.
func TestSQLiteProcesses(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "registry.db")
	r := open(t, registry.TypeSQLite, dsn)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=churn", helperDSNEnv+"="+dsn, fmt.Sprintf("%s=p%d", helperNodeEnv, i))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		must(t, cmd.Start())
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	must(t, churn(r, "here", 50))
	for range 200 {
		if _, err := r.Resolve(ctx, "echo", registry.ResolveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	wantNames(t, r, "here/echo", "p0/echo", "p1/echo", "p2/echo")
}

// TestSQLiteFileModes: the database and its -wal and -shm files are 0640, its
// new directory 0750, whatever the umask.
func TestSQLiteFileModes(t *testing.T) {
	old := syscall.Umask(0o077) // not parallel: the umask is the process's
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "var", "lib")
	path := filepath.Join(dir, "registry.db")
	r := open(t, registry.TypeSQLite, path)
	register(t, r, daemon("n1", "echo", 100, "tcp 127.0.0.1:1"))
	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{{dir, sqlite.DirMode | fs.ModeDir}, {path, sqlite.FileMode}, {path + "-wal", sqlite.FileMode}, {path + "-shm", sqlite.FileMode}} {
		fi, err := os.Stat(f.path)
		must(t, err)
		if fi.Mode() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode(), f.mode)
		}
	}
	// An existing file keeps the mode its owner gave it.
	must(t, os.Chmod(path, 0o600))
	open(t, registry.TypeSQLite, path)
	if fi, err := os.Stat(path); err != nil || fi.Mode() != 0o600 {
		t.Errorf("existing file: %v, %v; want mode 0600 kept", fi.Mode(), err)
	}
}

// TestSQLiteSettings checks the pragmas every connection runs with.
func TestSQLiteSettings(t *testing.T) {
	r := storeOf(t, open(t, registry.TypeSQLite, filepath.Join(t.TempDir(), "registry.db")))
	for name, want := range map[string]string{
		"journal_mode": "wal", "foreign_keys": "1", "synchronous": "1", "busy_timeout": "5000",
	} {
		for conn, db := range map[string]*sql.DB{"writer": r.Writer(), "reader": r.Reader()} {
			var got string
			must(t, db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got))
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", conn, name, got, want)
			}
		}
	}
	var only string
	must(t, r.Reader().QueryRowContext(ctx, "PRAGMA query_only").Scan(&only))
	if only != "1" {
		t.Errorf("reader: PRAGMA query_only = %s, want 1", only)
	}
}

// TestSQLiteOpenBesideWriter: a client opens and resolves while the master
// holds the write lock (an open registry needs no migration, so no lock).
func TestSQLiteOpenBesideWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	master := open(t, registry.TypeSQLite, path)
	register(t, master, daemon("n1", "echo", 100, "tcp 127.0.0.1:1"))
	tx, err := storeOf(t, master).Writer().BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	must(t, err)
	defer tx.Rollback()
	openCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	client, err := registry.Open(openCtx, registry.TypeSQLite, path)
	must(t, err)
	defer client.Close()
	wantResolve(t, client, "echo", local1, "n1 tcp 127.0.0.1:1")
	if d := time.Since(start); d > sqlite.BusyTimeout/2 {
		t.Fatalf("open and resolve took %v: waited for the writer", d)
	}
}

func TestSQLiteBadPaths(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro", "/dev/null/x.db", "/proc/nsfd/registry.db"} {
		if r, err := registry.Open(ctx, registry.TypeSQLite, dsn); err == nil {
			r.Close()
			t.Errorf("open %q: no error", dsn)
		}
	}
}

// TestSQLiteHeartbeatNoticesReplacedFile: once the database file is deleted
// or another file takes its path, Heartbeat fails with ErrReplaced; a new
// Open makes a fresh registry there, without the old file's journal.
func TestSQLiteHeartbeatNoticesReplacedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.db")
	r := open(t, registry.TypeSQLite, path)
	register(t, r, daemon("n1", "echo", 100, "tcp 127.0.0.1:1"))
	must(t, r.Heartbeat(ctx, "n1", 100))

	must(t, os.Remove(path))
	if err := r.Heartbeat(ctx, "n1", 100); !errors.Is(err, registry.ErrReplaced) {
		t.Fatalf("heartbeat after the file was deleted: %v, want ErrReplaced", err)
	}
	again := open(t, registry.TypeSQLite, path)
	wantNames(t, again) // a new, empty registry, not the deleted one's journal replayed
	register(t, again, daemon("n1", "echo", 100, "tcp 127.0.0.1:1"))
	must(t, again.Heartbeat(ctx, "n1", 100))

	// Another file moved onto the path.
	other := filepath.Join(dir, "other.db")
	open(t, registry.TypeSQLite, other)
	must(t, os.Rename(other, path))
	if err := again.Heartbeat(ctx, "n1", 100); !errors.Is(err, registry.ErrReplaced) {
		t.Fatalf("heartbeat after the file was replaced: %v, want ErrReplaced", err)
	}
}
