package registry

import (
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{"postgres://u:secret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgresql://u:secret@h:5432/db?sslmode=require", "postgresql://u:xxxxx@h:5432/db?sslmode=require"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db", "postgres://h/db"},
		{"postgres://u:@h/db", "postgres://u:@h/db"},
		{"postgres://u:p%40ss%2Fw@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:p@ss@h/db", "postgres://u:xxxxx@h/db"},  // unescaped '@'
		{"postgres://u:pa/ss@h/db", "postgres://u:xxxxx@h/db"}, // unescaped '/'
		{"postgres://u:pa?ss@h/db", "postgres://u:xxxxx@h/db"}, // unescaped '?'
		{"postgres://u:pa#ss@h/db", "postgres://u:xxxxx@h/db"}, // unescaped '#'
		{"postgres://u@/db?host=/tmp/s&password=secret", "postgres://u@/db?host=/tmp/s&password=xxxxx"},
		{"postgres:///db?password=secret&user=u", "postgres:///db?password=xxxxx&user=u"},
		{"postgres:///db?password=secret#frag", "postgres:///db?password=xxxxx#frag"},
		{"postgres://u:one@h/db?password=two", "postgres://u:xxxxx@h/db?password=xxxxx"},
		{"postgres://h/db?user=a@b", "postgres://h/db?user=a@b"},
		{"postgres://h/db?sslkey=k&sslpassword=s3cret", "postgres://h/db?sslkey=k&sslpassword=xxxxx"},
		{"postgres://h/db?pass%77ord=s3cret", "postgres://h/db?pass%77ord=xxxxx"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"password=secret", "password=xxxxx"},
		{"host=h sslkey=k sslpassword=s3cret", "host=h sslkey=k sslpassword=xxxxx"},
		{"host=h password = secret dbname=db", "host=h password = xxxxx dbname=db"},
		{"host=h password='se cret' dbname=db", "host=h password='xxxxx' dbname=db"},
		{`host=h password='it\'s' dbname=db`, "host=h password='xxxxx' dbname=db"},
		{`host=h password=a\ b dbname=db`, "host=h password=xxxxx dbname=db"},
		{"host=h password= dbname=db", "host=h password= xxxxx"}, // as libpq reads it
		{"host=h password='' dbname=db", "host=h password='' dbname=db"},
		{"host=h passwordx=1 user=password", "host=h passwordx=1 user=password"},
		{"host=/tmp/x port=5432 user=postgres dbname=nsfd", "host=/tmp/x port=5432 user=postgres dbname=nsfd"},
		{"../var/registry.db", "../var/registry.db"},
		{"", ""},
	} {
		if got := Redact(c.dsn); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.dsn, got, c.want)
		}
	}
}

func TestPasswords(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		want []string
	}{
		{"postgres://u:p%40ss@h/db", []string{"p%40ss", "p@ss"}},
		{"host=h password='se cret'", []string{"'se cret'", "se cret"}},
		{"host=h password=plain", []string{"plain"}},
		{"host=h", nil},
	} {
		if got := Passwords(c.dsn); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Passwords(%q) = %q, want %q", c.dsn, got, c.want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"postgres://u:secret@h/db", "host=h password='x y' dbname=d", "postgres:///d?password=p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		// Whatever Redact leaves in a password's place is xxxxx.
		got := Redact(dsn)
		for _, s := range findPasswords(got) {
			if s.value != redacted {
				t.Fatalf("Redact(%q) = %q, which still has password %q", dsn, got, s.value)
			}
		}
		// The password pgx would use is gone, unless it is also written
		// elsewhere (user=pw password=pw).
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil || len(cfg.Password) < 3 || strings.Count(dsn, cfg.Password) > 1 {
			return
		}
		if strings.Contains(got, cfg.Password) {
			t.Fatalf("Redact(%q) = %q shows pgx's password %q", dsn, got, cfg.Password)
		}
	})
}
