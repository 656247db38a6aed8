package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseListen(f *testing.F) {
	for _, s := range []string{
		"7001", "127.0.0.1:7001", "127.0.0.1|7001|udp", "*:80", "0.0.0.0:80", "[::1]:80/tcp/IPv6",
		"/run/x.sock|unix", "var/run/q.sock", "x.sock|unixdgram", "443/ssl", "localhost:http", "[::1",
		"[fe80::1%eth0]:0", "a:b:c", "|", "/", "//unix", "7001/IPv4/tcp",
	} {
		f.Add(s, "", "")
	}
	f.Add("7001", "::1", "udp")
	f.Add("q.sock", "", "unix")
	f.Fuzz(func(t *testing.T, value, host, proto string) {
		l, err := ParseListen(value, host, proto, "/etc/nsfd")
		if err != nil {
			return
		}
		switch l.Proto {
		case ProtoTCP, ProtoUDP:
			h, p, err := net.SplitHostPort(l.Addr)
			if err != nil {
				t.Fatalf("%q: Addr %q: %v", value, l.Addr, err)
			}
			if n, err := strconv.ParseUint(p, 10, 16); err != nil || strconv.FormatUint(n, 10) != p {
				t.Fatalf("%q: port %q", value, p)
			}
			if h == "*" {
				t.Fatalf("%q: host *", value)
			}
		case ProtoUnix, ProtoUnixgram:
			if !filepath.IsAbs(l.Addr) || l.IPv != 0 {
				t.Fatalf("%q: %+v", value, l)
			}
		default:
			t.Fatalf("%q: proto %q", value, l.Proto)
		}
		if l.IPv != 0 && l.IPv != 4 && l.IPv != 6 {
			t.Fatalf("%q: IPv %d", value, l.IPv)
		}
		again, err := ParseListen(l.String(), "", "", "/elsewhere")
		if err != nil || again != l {
			t.Fatalf("%q: round trip of %q = %+v, %v; want %+v", value, l.String(), again, err, l)
		}
	})
}

func FuzzLoadDaemon(f *testing.F) {
	f.Add(designEcho, false)
	f.Add("min_servers 5\nport var/run/queue.sock\nproto unix\nbuiltin queue\nsetsid 1\n", true)
	f.Add("command = /bin/cat\nport = 1\nenv_file = x.env\n[env]\nA = 1\n", false)
	f.Add("command = `a\nb`\nport = \"\"\"1\n\"\"\"\n[DEFAULT]\n- = 1\n", false)
	f.Add("\"\"\"k\"\"\" = v\n[a.b]\nc = d\n", false)
	f.Add("\xff\xfe[env]\n", false)
	f.Add("command = sh -c 'a;b' ; c\nport = [::1]:0/udp/IPv6\nmin_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n", false)
	// Every daemon file of the broken fixtures seeds the corpus too.
	files, _ := filepath.Glob(filepath.Join("testdata", "broken", "*", "etc", "*"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil && filepath.Base(file) != MasterFileName {
			f.Add(string(data), filepath.Ext(file) == ".conf")
		}
	}
	f.Fuzz(func(t *testing.T, text string, conf bool) {
		dir := t.TempDir()
		name := "fuzz.ini"
		if conf {
			name = "fuzz.conf"
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := LoadDaemon(path, nil)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %v, want Errors", err, err)
			}
			for _, e := range es {
				if e.File == "" || e.Msg == "" {
					t.Fatalf("incomplete error %#v", e)
				}
			}
			return
		}
		if d.Hash == "" || d.Name == "" {
			t.Fatalf("daemon without hash or name: %+v", d)
		}
		if d.MinServers < 1 || d.MinServers > d.MaxServers || d.MinSpareServers > d.MinServers ||
			d.MinSpareServers > d.MaxSpareServers || d.MaxSpareServers >= d.MaxServers {
			t.Fatalf("pool rules broken: %+v", d)
		}
		if len(d.Command) == 0 && d.Builtin == "" || len(d.Listeners) == 0 {
			t.Fatalf("no command or listener: %+v", d)
		}
	})
}

// FuzzScanINI holds the line scanner to ini.v1: both accept the same files,
// and each key the scanner finds is a key ini.v1 has in the same section.
func FuzzScanINI(f *testing.F) {
	f.Add(designEcho)
	f.Add("a = `x\ny`\n[s]\nb: \"\"\"q\nr\"\"\"\n\"k\" = 1\n[DEFAULT]\nc = 2\n")
	f.Add("[a.b]\nx = 1\n[a]\ny = 2\n- = 3\n- = 4\n")
	f.Add("\xef\xbb\xbf[s]\n  k = v ; c\n")
	f.Fuzz(func(t *testing.T, text string) {
		rf, errs := scanINI("x.ini", []byte(text))
		file, err := loadINI([]byte(text))
		if (len(errs) == 0) != (err == nil) {
			t.Fatalf("scanner errors %v, ini.v1 error %v", errs, err)
		}
		if err != nil {
			return
		}
		for _, e := range rf.Entries {
			name := e.Section
			if name == "" {
				name = "DEFAULT"
			}
			sec, err := file.GetSection(name)
			if err != nil {
				t.Fatalf("line %d: section %q: %v", e.Line, e.Section, err)
			}
			if e.Key != "-" && !sec.HasKey(e.Key) {
				t.Fatalf("line %d: ini.v1 has no key %q in [%s]", e.Line, e.Key, e.Section)
			}
		}
		// A key given once gets ini.v1's value.
		parsed, errs := parseINI("x.ini", []byte(text))
		if errs != nil {
			t.Fatalf("parseINI: %v", errs)
		}
		count := map[[2]string]int{}
		for _, e := range parsed.Entries {
			count[[2]string{e.Section, e.Key}]++
		}
		for _, e := range parsed.Entries {
			if e.Key == "-" || count[[2]string{e.Section, e.Key}] > 1 {
				continue
			}
			name := e.Section
			if name == "" {
				name = "DEFAULT"
			}
			want := file.Section(name).Key(e.Key).String()
			if raw := strings.TrimSpace(e.raw); raw != "" && (raw[0] == ';' || raw[0] == '#') {
				want = ""
			}
			if e.Value != want {
				t.Fatalf("line %d: %q = %q, ini.v1 says %q", e.Line, e.Key, e.Value, want)
			}
		}
	})
}
