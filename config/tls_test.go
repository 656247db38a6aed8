package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsfd/nsfd/internal/testcert"
)

// TestSecuredCallKeys: the files tls_cert, tls_key, tls_client_ca and
// tokens name are checked when the daemon loads: they load, pair up, can
// be read by the workers' user and the key by no other; the certificate's
// first DNS name becomes the name clients verify it against.
func TestSecuredCallKeys(t *testing.T) {
	needRoot(t)
	fakeUsers(t)
	dir := openTempDir(t)
	ca := testcert.NewCA(t, "test CA")
	cert, key := ca.WriteFiles(t, dir, "kv", "*.kv.test", "kv.test", "10.0.0.1")
	ipCert, ipKey := ca.WriteFiles(t, dir, "ip", "10.0.0.1")
	_, otherKey := ca.WriteFiles(t, dir, "other", "other.test")
	caFile := ca.WriteCA(t, dir, "ca")
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("# none yet\n"), 0o640)
	worldKey := filepath.Join(dir, "world.key")
	data, _ := os.ReadFile(key)
	os.WriteFile(worldKey, data, 0o644)
	os.Chmod(worldKey, 0o644)
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)

	load := func(body string) (*Daemon, Errors) {
		t.Helper()
		path := filepath.Join(dir, "kv.ini")
		if err := os.WriteFile(path, []byte("command = /bin/cat\nport = 127.0.0.1:7001\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		d, errs, _ := loadDaemon(path, nil, asRoot)
		return d, errs
	}
	d, errs := load("tls_cert = kv.crt\ntls_key = kv.key\ntls_client_ca = ca.pem\ntokens = tokens\n")
	if len(errs) > 0 {
		t.Fatalf("good files: %v", errs)
	}
	if d.TLSCert != cert || d.TLSKey != key || d.TLSClientCA != caFile || d.Tokens != tokens || d.TLSServerName != "kv.test" {
		t.Fatalf("loaded %q %q %q %q %q", d.TLSCert, d.TLSKey, d.TLSClientCA, d.Tokens, d.TLSServerName)
	}
	if d, errs := load("tls_cert = " + ipCert + "\ntls_key = " + ipKey + "\n"); len(errs) > 0 || d.TLSServerName != "" {
		t.Fatalf("a certificate for an IP address: %q %v", d.TLSServerName, errs)
	}
	for _, c := range []struct{ body, want string }{
		{"tls_cert = kv.crt\ntls_key = other.key\n", `kv.ini:3: key "tls_cert": "` + cert + `" with tls_key "` + otherKey + `": tls: private key does not match public key`},
		{"tls_cert = kv.crt\ntls_key = world.key\n", `kv.ini:4: key "tls_key": "` + worldKey + `" is readable by every user (mode 0644)`},
		{"tls_cert = kv.crt\ntls_key = kv.key\ntls_client_ca = ca.txt\n", `kv.ini:5: key "tls_client_ca": "` + notPEM + `" holds no PEM certificate`},
		{"tls_cert = kv.crt\ntls_key = kv.key\nchroot = /srv\n", `kv.ini:3: key "tls_cert": not supported with chroot`},
		{"tls_cert = kv.crt\ntls_key = kv.key\nuser = nobody\n", `kv.ini:4: key "tls_key": the workers (uid 65534, gid 65534) cannot read ` + key + ` (mode 0600, owner 0:0)`},
		{"tokens = tokens\nuser = nobody\n", `kv.ini:3: key "tokens": the workers (uid 65534, gid 65534) cannot read ` + tokens + ` (mode 0640, owner 0:0)`},
		{"tls_key = kv.key\n", `kv.ini:3: key "tls_key": needs tls_cert`},
	} {
		_, errs := load(c.body)
		if !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.body, errs, c.want)
		}
	}
	// The workers' group may read the key.
	os.Chown(key, 0, 65534)
	os.Chmod(key, 0o640)
	if _, errs := load("tls_cert = kv.crt\ntls_key = kv.key\nuser = nobody\n"); len(errs) > 0 {
		t.Fatalf("a key the workers' group may read: %v", errs)
	}
}
