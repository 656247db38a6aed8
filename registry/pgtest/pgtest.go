// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb and the
// server from the machine's PostgreSQL installation, a data directory and a
// UNIX socket in a temporary directory, no TCP listener, fsync off.
//
// A package's tests typically share one cluster, started on first use and
// closed in TestMain, and give each test its own database:
//
//	var pg = pgtest.Shared()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Close()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		dsn := pg.Get(t).NewDatabase(t) // host=/tmp/pgtest-… port=5432 user=postgres dbname=t1 sslmode=disable
//		…
//	}
//
// or, for one test alone, dsn := pgtest.Start(t).
//
// PostgreSQL refuses to run as root, so when the test runs as root the server
// and initdb run as the postgres OS user (which Debian's postgresql package
// creates); otherwise they run as the current user. The server is started as
// a direct child with a parent-death signal (SIGQUIT, PostgreSQL's immediate
// shutdown, what `pg_ctl stop -m immediate` sends), so a test binary killed by
// a timeout leaves no server behind.
//
// Missing binaries are an error, never a skip: the tests that need PostgreSQL
// are part of the suite, and the error says what to install.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// Port is the cluster's port number. There is no TCP listener: the port
	// only names the socket file, <Dir>/.s.PGSQL.5432.
	Port = 5432
	// Superuser is the cluster's superuser role, allowed in without a
	// password over the UNIX socket. Other roles need a password
	// (scram-sha-256).
	Superuser = "postgres"
	// Database is the database Launch creates and DSN names.
	Database = "nsfd"
	// StartTimeout bounds how long Launch, New and Start wait for the server
	// to accept connections.
	StartTimeout = 30 * time.Second
)

// ErrNoBinaries is returned when initdb and postgres cannot be found.
var ErrNoBinaries = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found on PATH " +
	"or in /usr/lib/postgresql/*/bin; install them: apt-get install postgresql")

// Server is a throwaway PostgreSQL cluster. Its methods are safe for
// concurrent use.
type Server struct {
	opts Options
	bin  string              // directory holding initdb and postgres
	dir  string              // socket directory; holds data/ and postgres.log
	cred *syscall.Credential // whom the server runs as; nil: the current user
	env  []string

	mu     sync.Mutex
	proc   *os.Process
	exited chan struct{} // closed when proc has exited

	dbs       atomic.Int64
	closeOnce sync.Once
	closeErr  error
}

// Start launches a cluster for tb, closes it when tb ends, and returns the DSN
// of its database Database. It fails tb (never skips it) if the cluster
// cannot start.
func Start(tb testing.TB) string {
	tb.Helper()
	return New(tb).DSN()
}

// New launches a cluster for tb and closes it when tb ends. It fails tb
// (never skips it) if the cluster cannot start.
func New(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	s, err := Launch(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// Launch creates a cluster in a new temporary directory, starts it, waits until
// it accepts connections and creates the database Database. The caller must
// Close it. This is the variant for TestMain, where there is no testing.TB.
func Launch(ctx context.Context) (*Server, error) { return LaunchWith(ctx, Options{}) }

// LaunchWith is Launch with options: a server in a network namespace,
// listening on TCP, with TLS (see Options).
func LaunchWith(ctx context.Context, o Options) (*Server, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, bin: bin, env: []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "LANG=C"}}
	if os.Geteuid() == 0 {
		if s.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := s.setup(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) setup(ctx context.Context) error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	s.env = append(s.env, "HOME="+s.dir)
	initdb := exec.CommandContext(ctx, filepath.Join(s.bin, "initdb"),
		"--pgdata", s.dataDir(), "--username", Superuser, "--auth-local", "trust", "--auth-host", "reject",
		"--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	initdb.Dir = s.dir
	initdb.Env = s.env
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	conf := fmt.Sprintf(`
# pgtest: a throwaway cluster on a UNIX socket only. fsync is off for speed;
# synchronous_commit stays on so that a commit survives Stop (a crash of the
# server, not of the machine).
listen_addresses = ''
unix_socket_directories = '%s'
port = %d
fsync = off
full_page_writes = off
max_connections = 100
`, strings.ReplaceAll(s.dir, "'", "''"), Port)
	more, err := s.opts.settings(s)
	if err != nil {
		return err
	}
	if err := appendFile(filepath.Join(s.dataDir(), "postgresql.conf"), conf+more); err != nil {
		return err
	}
	// The superuser gets in without a password, any other role needs one, so
	// tests can exercise authentication failures.
	hba := "local all " + Superuser + " trust\nlocal all all scram-sha-256\n" + strings.Join(s.opts.HBA, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(s.dataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	_, err = s.CreateDatabase(ctx, Database)
	return err
}

// FindBinaries returns the directory holding PostgreSQL's initdb and postgres:
// where initdb on PATH points to, else the newest /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, p)
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	candidates = append(candidates, found...)
	for _, p := range candidates {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		dir := filepath.Dir(real)
		if isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

// version is the major version in /usr/lib/postgresql/<v>/bin/initdb.
func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres OS user to run PostgreSQL as "+
			"(apt-get install postgresql creates it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// Dir is the cluster's temporary directory: the socket directory, the DSN's
// host. The data directory is Dir()/data, the server's log Dir()/postgres.log.
func (s *Server) Dir() string { return s.dir }

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// DSN returns the key=value connection string of the database Database, as the
// superuser: host=<Dir> port=5432 user=postgres dbname=nsfd sslmode=disable.
func (s *Server) DSN() string { return s.DSNFor(Database) }

// DSNFor returns the key=value connection string of database db, as the
// superuser.
func (s *Server) DSNFor(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.dir, Port, Superuser, db)
}

// URL returns the DSN of database db in URL form:
// postgres://postgres@/db?host=<Dir>&port=5432&sslmode=disable.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", Superuser, db, s.dir, Port)
}

// Exec runs sql as the superuser in database db.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSNFor(db))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// CreateDatabase creates database name and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := s.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return s.DSNFor(name), nil
}

// NewDatabase creates a database of its own for tb (t1, t2, …) and returns its
// DSN. It fails tb if it cannot.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	dsn, err := s.CreateDatabase(ctx, fmt.Sprintf("t%d", s.dbs.Add(1)))
	if err != nil {
		tb.Fatal(err)
	}
	return dsn
}

// Start starts the server if it is not running and waits until it accepts
// connections or ctx ends. After Stop, it brings the same cluster back, with
// its data, on the same socket.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	logf, err := os.OpenFile(s.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.dataDir())
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(s.cred)
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal fires when the thread that forked the
		// server exits, so that thread stays locked to this goroutine,
		// which lives as long as the server does.
		runtime.LockOSThread()
		defer logf.Close()
		leave, err := enterNetNS(s.opts.NetNS)
		if err != nil {
			started <- err
			return
		}
		defer leave()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // an immediate shutdown exits non-zero
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.proc, s.exited = cmd.Process, exited
	return s.waitReady(ctx, exited)
}

// waitReady polls until the server accepts a connection, it exits, or ctx
// ends.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attempt, s.DSNFor("postgres"))
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			return fmt.Errorf("pgtest: postgres exited during start-up:\n%s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not accepting connections: %w (last: %v)\n%s", ctx.Err(), err, s.logTail())
		case <-tick.C:
		}
	}
}

// Stop shuts the server down the way a crash would (immediate shutdown, what
// `pg_ctl stop -m immediate` does) and waits until it has exited; if ctx ends
// first, it kills it. Clients see their connections fail; Start brings it
// back. Stopping a stopped server does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	proc, exited := s.proc, s.exited
	s.proc, s.exited = nil, nil
	if err := proc.Signal(syscall.SIGQUIT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: stop: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL) // the server and its children: Setpgid
		<-exited
		return fmt.Errorf("pgtest: stop: %w; killed", ctx.Err())
	}
}

// Close stops the server and removes its directory. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := s.Stop(ctx)
		if s.dir != "" {
			err = errors.Join(err, os.RemoveAll(s.dir))
		}
		s.closeErr = err
	})
	return s.closeErr
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Lazy is a cluster shared by a package's tests, launched by the first Get and
// closed by Close (in TestMain, after m.Run).
type Lazy struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns a Lazy cluster; nothing starts until Get.
func Shared() *Lazy { return &Lazy{} }

// Get launches the cluster on first use and returns it. It fails tb (never
// skips it) if the cluster cannot start; later calls fail with the same error.
func (l *Lazy) Get(tb testing.TB) *Server {
	tb.Helper()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		defer cancel()
		l.s, l.err = Launch(ctx)
	})
	if l.err != nil {
		tb.Fatal(l.err)
	}
	return l.s
}

// Close closes the cluster if Get launched one.
func (l *Lazy) Close() error {
	l.once.Do(func() {}) // no launch after Close
	if l.s == nil {
		return nil
	}
	return l.s.Close()
}
