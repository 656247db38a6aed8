package pgtest_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nsfd/nsfd/registry/pgtest"
)

var pg = pgtest.Shared()

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Close(); err != nil {
		println(err.Error())
		code = 1
	}
	os.Exit(code)
}

func query(ctx context.Context, dsn string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, "SELECT 40 + 2").Scan(&n)
	return n, err
}

func TestStartConnect(t *testing.T) {
	s := pg.Get(t)
	ctx := context.Background()
	for _, dsn := range []string{s.DSN(), s.URL(pgtest.Database), s.NewDatabase(t)} {
		if n, err := query(ctx, dsn); err != nil || n != 42 {
			t.Fatalf("%s: %d, %v", dsn, n, err)
		}
	}
	if fi, err := os.Stat(s.Dir() + "/.s.PGSQL.5432"); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket: %v %v", fi, err)
	}
}

func TestPasswordRequiredForOtherRoles(t *testing.T) {
	s := pg.Get(t)
	ctx := context.Background()
	if err := s.Exec(ctx, "postgres", "CREATE ROLE alice LOGIN PASSWORD 'right'"); err != nil {
		t.Fatal(err)
	}
	dsn := "host=" + s.Dir() + " port=5432 user=alice dbname=nsfd"
	if _, err := query(ctx, dsn+" password=right"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	_, err := query(ctx, dsn+" password=wrong")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("wrong password: %v, want invalid_password (28P01)", err)
	}
}

func TestStopStart(t *testing.T) {
	s := pgtest.New(t) // a cluster of its own: stopping the shared one would disturb other tests
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Exec(ctx, pgtest.Database, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := query(ctx, s.DSN()); err == nil {
		t.Fatal("connected to a stopped server")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 7 {
		t.Fatalf("after restart: %d, %v", x, err)
	}
}

func TestCloseRemovesDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgtest.Launch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir left behind: %v", err)
	}
}

func TestFindBinaries(t *testing.T) {
	dir, err := pgtest.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(dir)
}
