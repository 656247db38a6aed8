package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/registry/pgtest"
)

// TestPostgresErrorsHidePassword: whatever goes wrong on opening, the error
// does not show the DSN's password.
func TestPostgresErrorsHidePassword(t *testing.T) {
	s := pg.Get(t)
	const right, wrong = "Right-h0rse-battery", "Wr0ng-s3cret-staple"
	must(t, s.Exec(ctx, "postgres", "CREATE ROLE nsfd_pw LOGIN PASSWORD '"+right+"'"))
	must(t, s.Exec(ctx, "postgres", "CREATE DATABASE nsfd_pw OWNER nsfd_pw"))
	sock := url.QueryEscape(s.Dir())
	for _, c := range []struct{ name, dsn, password string }{
		{"wrong password, key=value", fmt.Sprintf("host=%s port=%d user=nsfd_pw password=%s dbname=nsfd", s.Dir(), pgtest.Port, wrong), wrong},
		{"wrong password, quoted", fmt.Sprintf("host=%s port=%d user=nsfd_pw password='%s' dbname=nsfd", s.Dir(), pgtest.Port, wrong), wrong},
		{"wrong password, URL", fmt.Sprintf("postgres://nsfd_pw:%s@/nsfd?host=%s&port=%d", wrong, sock, pgtest.Port), wrong},
		{"wrong password, URL query", fmt.Sprintf("postgres:///nsfd?host=%s&port=%d&user=nsfd_pw&password=%s", sock, pgtest.Port, wrong), wrong},
		{"no server", "postgres://nsfd_pw:" + wrong + "@127.0.0.1:1/nsfd?connect_timeout=5", wrong},
		{"no socket", "host=/nonexistent user=nsfd_pw password=" + wrong + " dbname=nsfd", wrong},
		{"bad port", "postgres://nsfd_pw:" + wrong + "@127.0.0.1:notaport/nsfd", wrong},
		{"bad option", "host=/tmp password=" + wrong + " sslmode=bogus", wrong},
		{"escaped", "postgres://nsfd_pw:" + url.PathEscape("p@ss/w0rd!") + "@127.0.0.1:notaport/nsfd", "p@ss/w0rd!"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := registry.Open(ctx, registry.TypePostgres, c.dsn)
			if err == nil {
				r.Close()
				t.Fatal("no error")
			}
			t.Log(err)
			for _, p := range []string{c.password, url.PathEscape(c.password), url.QueryEscape(c.password)} {
				if strings.Contains(err.Error(), p) {
					t.Fatalf("error shows the password %q: %v", p, err)
				}
			}
		})
	}
	// The right password works: the failures above were the password's.
	r := open(t, registry.TypePostgres, fmt.Sprintf("host=%s port=%d user=nsfd_pw password=%s dbname=nsfd_pw", s.Dir(), pgtest.Port, right))
	if _, err := r.Resolve(ctx, "echo", registry.ResolveOptions{}); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("resolve: %v", err)
	}
}

// TestPostgresRestart: the registry fails while PostgreSQL is down and works
// again, on the same handle, once it is back.
func TestPostgresRestart(t *testing.T) {
	s := pgtest.New(t) // a cluster of its own: the shared one stays up
	r := open(t, registry.TypePostgres, s.DSN())
	register(t, r, daemon("n1", "echo", 100, "tcp 10.0.0.1:7001"))
	stop, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	must(t, s.Stop(stop))

	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if err := r.Heartbeat(short, "n1", 100); err == nil {
		t.Fatal("heartbeat with PostgreSQL down: no error")
	}
	if _, err := r.Resolve(short, "echo", local1); err == nil || errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("resolve with PostgreSQL down: %v, want a connection error", err)
	}

	must(t, s.Start(stop))
	eventually(t, "the registry to reconnect", func() bool { return r.Heartbeat(ctx, "n1", 100) == nil })
	wantResolve(t, r, "echo", local1, "n1 tcp 10.0.0.1:7001")
	register(t, r, daemon("n2", "echo", 200, "tcp 10.0.0.2:7001"))
	wantResolve(t, r, "echo", local1, "n1 tcp 10.0.0.1:7001", "n2 tcp 10.0.0.2:7001")
}
