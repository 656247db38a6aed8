package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestIsConfFormat(t *testing.T) {
	tests := []struct {
		path, text string
		conf       bool
	}{
		{"echo.ini", "command = /bin/cat\n", false},
		{"echo.ini", "command=/bin/cat\n", false},
		{"echo.ini", "command: /bin/cat\n", false},
		{"echo.ini", "; comment\n# comment\n\n[env]\n", false},
		{"echo.ini", "", false},
		{"echo.ini", "\xEF\xBB\xBFport = 1\n", false},
		{"echo.ini", `"quoted key" = 1`, false},
		{"echo.ini", "# Net::Server\nport 7001\n", true},
		{"echo.ini", "port [::1]:80\n", true},
		{"echo.ini", "port 127.0.0.1:7001\n", true},
		{"echo.ini", "background\n", true},
		{"echo.conf", "command = /bin/cat\n", true},
		{"echo.conf", "", true},
	}
	for _, tt := range tests {
		if got := isConfFormat(tt.path, []byte(tt.text)); got != tt.conf {
			t.Errorf("isConfFormat(%q, %q) = %v, want %v", tt.path, tt.text, got, tt.conf)
		}
	}
}

// show renders entries as "line:section.key=value" for comparison.
func show(rf *rawFile) string {
	var b []string
	for _, e := range rf.Entries {
		b = append(b, fmt.Sprintf("%d:%s.%s=%s", e.Line, e.Section, e.Key, e.Value))
	}
	return strings.Join(b, "\n")
}

func TestParseINI(t *testing.T) {
	text := "; a daemon\n" +
		"command = ../bin/echo --greeting hi     ; argv, split like a shell would\n" + // 2
		"port    = 127.0.0.1:7001\n" + // 3
		"port = /run/x.sock|unix # the socket\n" + // 4
		"port =\n" + // 5: empty, left out of ValueWithShadows
		"port = 7003\n" + // 6
		"node_name = ; default: hostname\n" + // 7
		"sh = sh -c 'a;b'#c\n" + // 8
		"quoted = \"  spaced  \"\n" + // 9
		"multi = `one\n" + // 10
		"two`\n" +
		"after: 1\n" + // 12
		"\n[env]\n" + // 14
		"  GREETING = hi there\n" + // 15
		"[DEFAULT]\n" + // 16
		"back = 1\n" // 17
	rf, errs := parseINI("echo.ini", []byte(text))
	if errs != nil {
		t.Fatal(errs)
	}
	want := strings.Join([]string{
		"2:.command=../bin/echo --greeting hi",
		"3:.port=127.0.0.1:7001",
		"4:.port=/run/x.sock|unix",
		"5:.port=",
		"6:.port=7003",
		"7:.node_name=",
		"8:.sh=sh -c 'a;b'#c",
		"9:.quoted=  spaced  ",
		"10:.multi=one\ntwo",
		"12:.after=1",
		"15:env.GREETING=hi there",
		"17:.back=1",
	}, "\n")
	if got := show(rf); got != want {
		t.Errorf("entries:\n%s\nwant:\n%s", got, want)
	}
	if len(rf.Headers) != 2 || rf.Headers[0] != (header{"env", 14}) || rf.Headers[1] != (header{"", 16}) {
		t.Errorf("headers = %v", rf.Headers)
	}
}

func TestParseINISyntaxErrors(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"a = 1\nnot ini\n", `x.ini:2: syntax error: not a "key = value" line`},
		{"a = 1\n\n[env\n", `x.ini:3: syntax error: section header without "]"`},
		{"[]\n", `x.ini:1: syntax error: empty section name`},
		{"a = 1\n= 2\n", `x.ini:2: syntax error: no key before "="`},
		{"a = 1\n: 2\n", `x.ini:2: syntax error: no key before ":"`},
		{"\"a = 1\n", `x.ini:1: syntax error: key opened with " is never closed`},
		{"\"\" = 1\n", `x.ini:1: syntax error: empty key name`},
		{"\"a\" 1\n", `x.ini:1: syntax error: not a "key = value" line`},
		{"a = 1\nb = `open\nmore\n", "x.ini:2: key \"b\": syntax error: value opened with ` is never closed"},
		{"a = \"\"\"open\n", `x.ini:1: key "a": syntax error: value opened with """ is never closed`},
		{"a = 1\nb\nc\n", "x.ini:2: syntax error: not a \"key = value\" line\nx.ini:3: syntax error: not a \"key = value\" line"},
	} {
		_, errs := parseINI("x.ini", []byte(tt.text))
		if errs == nil || errs.Error() != tt.want {
			t.Errorf("parseINI(%q) = %v, want %s", tt.text, errs, tt.want)
		}
	}
}

func TestParseConf(t *testing.T) {
	text := "# Net::Server conf, as Net::Server::Framework ships it\n" +
		"min_servers 5\n" +
		"min_spare_servers\t2\n" +
		"\n" +
		"   port   var/run/queue.sock  \n" +
		"port 7001\n" +
		"background\n" +
		"command /bin/echo 'a # b'\n"
	rf, errs := parseConf("queue.conf", []byte(text))
	if errs != nil {
		t.Fatal(errs)
	}
	want := strings.Join([]string{
		"2:.min_servers=5",
		"3:.min_spare_servers=2",
		"5:.port=var/run/queue.sock",
		"6:.port=7001",
		"7:.background=",
		"8:.command=/bin/echo 'a # b'",
	}, "\n")
	if got := show(rf); got != want {
		t.Errorf("entries:\n%s\nwant:\n%s", got, want)
	}

	for _, tt := range []struct{ text, want string }{
		{"port 1\nmax_servers=8\n", `q.conf:2: not a "key value" line (write "max_servers 8")`},
		{"port: 80\n", `q.conf:1: not a "key value" line (write "port 80")`},
		{"[env]\n", `q.conf:1: not a "key value" line`},
		{"port 1\n%% 2\n9lives 3\n", "q.conf:2: not a \"key value\" line\nq.conf:3: not a \"key value\" line"},
	} {
		_, errs := parseConf("q.conf", []byte(tt.text))
		if errs == nil || errs.Error() != tt.want {
			t.Errorf("parseConf(%q) = %v, want %s", tt.text, errs, tt.want)
		}
	}
}
