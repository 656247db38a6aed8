//go:build linux

package main

// The registry connection of a fleet over TLS (sslmode=verify-full), and a
// connection string with several hosts, the first of them down.

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/internal/fleettest"
	"github.com/nsfd/nsfd/internal/testcert"
	"github.com/nsfd/nsfd/registry/pgtest"
)

func TestFleetRegistryTLSAndHosts(t *testing.T) {
	f := fleettest.New(t, fleettest.Options{Nodes: 2, Nsfd: filepath.Join(binDir, "nsfd"), SSL: true})
	if !strings.Contains(f.DSN, "sslmode=verify-full") {
		t.Fatalf("the fleet's DSN: %s", f.DSN)
	}
	// node2 lists two hosts: the first (the client's address) has no
	// PostgreSQL and refuses; libpq's rules, which pgx follows, try the
	// next, and target_session_attrs=read-write skips a standby.
	multi := strings.Replace(f.DSN, "host="+fleettest.PGAddr+" port=5432",
		"host="+fleettest.ClientAddr+","+fleettest.PGAddr+" port=5432,5432 target_session_attrs=read-write", 1)
	n2 := f.Nodes[1]
	n2.Write("nsfd.ini", "[nsfd]\nnode_name = node2\nrun_dir = ../var/run\n[registry]\ntype = postgres\ndsn = "+multi+
		"\nheartbeat = 200ms\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n")
	for _, n := range f.Nodes {
		n.Write("kv.ini", fleetKV(filepath.Join(n.Dir, "var", "kv")))
	}
	f.StartAll()
	reg := f.Registry(t)
	waitFor(t, "both nodes registered over TLS", 60*time.Second, func() bool {
		return slices.Equal(resolveNodes(reg, "kv", time.Second), []string{"node1", "node2"})
	})
	if out, errOut, code := n2.Nsfd("resolve", "kv"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("nsfd resolve through the multi-host DSN: %d %q %q", code, out, errOut)
	}

	// What the server refuses: plain text, and a certificate the client
	// cannot verify, from a host with no master.
	other := testcert.NewCA(t, "not the registry's CA")
	otherCA := other.WriteCA(t, t.TempDir(), "other")
	for _, c := range []struct{ name, dsn, want string }{
		{"plain text", strings.Replace(f.DSN, "sslmode=verify-full sslrootcert="+f.CAFile, "sslmode=disable", 1), "no encryption"},
		{"another CA", strings.Replace(f.DSN, "sslrootcert="+f.CAFile, "sslrootcert="+otherCA, 1), "certificate signed by unknown authority"},
		{"the first host alone", strings.Replace(f.DSN, "host="+fleettest.PGAddr, "host="+fleettest.ClientAddr, 1), "connection refused"},
	} {
		v := newEnv(t)
		v.write("nsfd.ini", "[registry]\ntype = postgres\ndsn = "+c.dsn+"\n")
		out, errOut, code := f.Run("", filepath.Join(binDir, "nsfd"), "--etc", v.etc, "resolve", "kv")
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: %d %q %q, want %q", c.name, code, out, errOut, c.want)
		}
		if strings.Contains(errOut, f.Password) {
			t.Errorf("%s: the error shows the password", c.name)
		}
	}
	if pgtest.Port != 5432 {
		t.Fatal("the multi-host DSN above assumes port 5432")
	}
}
