package config

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/nsfd/nsfd/internal/testcert"
)

// testUsers is a users file of one user, ann.
func testUsers(t *testing.T) string {
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return "ann:" + string(h) + "\n"
}

func TestLoadMasterHTTP(t *testing.T) {
	etc := t.TempDir()
	writeFile(t, etc, "users", testUsers(t))
	writeFile(t, etc, MasterFileName, "[nsfd]\nhttp_addr = 0.0.0.0:8080\nhttp_users = users\n")
	m, err := LoadMaster(etc)
	if err != nil {
		t.Fatal(err)
	}
	if m.HTTPAddr != "0.0.0.0:8080" || m.HTTPUsers != filepath.Join(etc, "users") {
		t.Fatalf("http: %+v", m)
	}
	// Loopback needs no users.
	writeFile(t, etc, MasterFileName, "[nsfd]\nhttp_addr = 127.0.0.1:0\n")
	if _, err := LoadMaster(etc); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMasterHTTPErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.NewCA(t, "ca").WriteFiles(t, dir, "web", "127.0.0.1")
	for _, tt := range []struct{ text, want string }{
		{"[nsfd]\nhttp_addr = 8080\n", `nsfd.ini:2: key "http_addr": "8080" is not host:port`},
		{"[nsfd]\nhttp_addr = 0.0.0.0:8080\n", `nsfd.ini:2: key "http_addr": 0.0.0.0:8080 is reachable from other hosts and http_users is not set`},
		{"[nsfd]\nhttp_addr = [::]:8080\n", `nsfd.ini:2: key "http_addr": [::]:8080 is reachable from other hosts`},
		{"[nsfd]\nhttp_users = users\n", `nsfd.ini:2: key "http_users": has no effect without http_addr`},
		{"[nsfd]\nhttp_addr = 127.0.0.1:1\nhttp_tls_cert = " + cert + "\n", `nsfd.ini:3: key "http_tls_cert": needs http_tls_key`},
		{"[nsfd]\nhttp_addr = 127.0.0.1:1\nhttp_tls_cert = " + key + "\nhttp_tls_key = " + key + "\n", `nsfd.ini:3: key "http_tls_cert": "` + key + `" with http_tls_key`},
		{"[nsfd]\nhttp_addr = 127.0.0.1:1\nhttp_users = missing\n", `nsfd.ini:3: key "http_users": "`},
		{"[nsfd]\nhttp_addr = 127.0.0.1:1\nhttp_users = bad\n", `nsfd.ini:3: key "http_users": tokens: `},
	} {
		etc := t.TempDir()
		writeFile(t, etc, "bad", "ann:plaintext\n")
		writeFile(t, etc, MasterFileName, tt.text)
		_, err := LoadMaster(etc)
		if err == nil || !strings.Contains(err.Error(), etc+"/"+tt.want) {
			t.Errorf("%q: err = %v\nwant %s", tt.text, err, tt.want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "localhost:80": true, "127.9.9.9:1": true,
		"0.0.0.0:80": false, "[::]:80": false, ":80": false, "10.0.0.1:80": false, "example.com:80": false, "bad": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v", addr, got)
		}
	}
}
