package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/config.md from the key table")

// docsMarker separates the hand-written introduction of docs/config.md from
// the part rendered from Keys.
const docsMarker = "<!-- Rendered from config.Keys by `go test ./config -run TestDocs -update`; edit the table in config/keys.go, not below. -->\n"

// renderKeyDocs renders Keys as the reference part of docs/config.md.
func renderKeyDocs() string {
	var b strings.Builder
	cell := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return strings.ReplaceAll(s, "|", `\|`)
	}
	table := func(keys []KeyDoc, head string, row func(KeyDoc) string) {
		fmt.Fprintf(&b, "\n%s\n%s\n", head, strings.Repeat("| --- ", strings.Count(head, "|")-1)+"|")
		for _, k := range keys {
			b.WriteString(row(k))
		}
	}
	pick := func(file, section string, ignored bool) []KeyDoc {
		var out []KeyDoc
		for _, k := range Keys {
			if k.File == file && k.Section == section && k.Ignored == ignored {
				out = append(out, k)
			}
		}
		return out
	}
	normal := func(k KeyDoc) string {
		name := "`" + k.Name + "`"
		if k.Repeat {
			name += " (repeatable)"
		}
		return fmt.Sprintf("| %s | %s | %s |\n", name, cell(k.Default), cell(k.Doc))
	}

	b.WriteString("\n## " + FileMaster + "\n")
	for _, s := range sections(FileMaster) {
		fmt.Fprintf(&b, "\n### [%s]\n", s)
		table(pick(FileMaster, s, false), "| key | default | meaning |", normal)
	}

	b.WriteString("\n## Daemon files (" + FileDaemon + ")\n\n### Keys (before any section)\n")
	table(pick(FileDaemon, "", false), "| key | default | meaning |", normal)
	fmt.Fprintf(&b, "\n### [%s]\n", EnvSection)
	table(pick(FileDaemon, EnvSection, false), "| key | default | meaning |", func(k KeyDoc) string {
		return fmt.Sprintf("| any `NAME` | %s | %s |\n", cell(k.Default), cell(k.Doc))
	})
	b.WriteString("\n### Net::Server keys ignored under nsfd\n\nThese load with a warning, so that a Net::Server conf file of an existing daemon loads as it is.\n")
	table(pick(FileDaemon, "", true), "| key | why it is ignored |", func(k KeyDoc) string {
		return fmt.Sprintf("| `%s` | %s |\n", k.Name, cell(k.Doc))
	})
	return b.String()
}

func TestDocs(t *testing.T) {
	path := filepath.Join("..", "docs", "config.md")
	data, err := os.ReadFile(path)
	if err != nil && !*update {
		t.Fatalf("read %s: %v (run go test ./config -run TestDocs -update)", path, err)
	}
	intro, _, found := strings.Cut(string(data), docsMarker)
	want := intro + docsMarker + renderKeyDocs()
	if *update {
		if !found && intro == "" {
			intro = "# Configuration\n\n"
		}
		want = intro + docsMarker + renderKeyDocs()
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !found {
		t.Fatalf("%s lacks the marker line %q (run go test ./config -run TestDocs -update)", path, docsMarker)
	}
	if string(data) != want {
		t.Errorf("%s differs from the key table; run go test ./config -run TestDocs -update", path)
	}
}

// TestKeysHaveLoaders applies a value to every key of the table, so that a key
// added to the table without a loader (or the reverse) fails here.
func TestKeysHaveLoaders(t *testing.T) {
	samples := map[string]string{
		"command": "/bin/cat", "builtin": "queue", "daemon_name": "x", "port": "7001", "host": "*",
		"proto": "tcp", "ipv": "4", "listen": "5", "socket_mode": "0600", "type": "notify",
		"umask": "022", "encoding": "json", "requires": "a", "groups": "a b",
		"registry.type": "sqlite", "registry.dsn": "x.db", "registry.heartbeat": "1s",
		"log.target": "file", "log.format": "json", "log.level": "debug", "log.max_size": "1M",
		"log.max_files": "3", "log.syslog_addr": "udp://h:514", "log.syslog_facility": "local0",
		"nsfd.metrics_addr": "127.0.0.1:9100",
	}
	for _, k := range Keys {
		if k.Ignored || k.Name == "*" {
			continue
		}
		v, ok := samples[k.Section+"."+k.Name]
		if !ok {
			v, ok = samples[k.Name]
		}
		if !ok {
			switch {
			case strings.HasPrefix(k.Name, "limit_"), strings.HasSuffix(k.Name, "_servers"),
				strings.HasPrefix(k.Name, "max_"), k.Name == "start_retries":
				v = "5"
			case strings.Contains(k.Doc, "time") || strings.Contains(k.Name, "timeout") ||
				strings.Contains(k.Name, "ttl") || strings.HasPrefix(k.Name, "backoff") ||
				k.Name == "watchdog" || k.Name == "start_seconds":
				v = "5s"
			default:
				v = "x"
			}
		}
		e := entry{Section: k.Section, Key: k.Name, Value: v, Line: 1}
		var errs Errors
		if k.File == FileMaster {
			dir := t.TempDir()
			writeFile(t, dir, MasterFileName, fmt.Sprintf("[%s]\n%s = %s\n", k.Section, k.Name, v))
			_, errs = loadMaster(dir, CurrentUser())
		} else {
			l := &daemonLoader{keyLoader: keyLoader{path: "x.ini", lines: map[string]int{}}, d: newDaemon("x", "/etc/x.ini")}
			l.apply(e)
			errs = l.errs
		}
		for _, err := range errs {
			if strings.Contains(err.Msg, "internal error") || strings.HasPrefix(err.Msg, "unknown key") {
				t.Errorf("%s [%s] %s: %v", k.File, k.Section, k.Name, err)
			}
		}
	}
}

// writeFile writes name in dir and returns its path.
func writeFile(tb testing.TB, dir, name, text string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}
