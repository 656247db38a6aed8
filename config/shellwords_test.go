package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "../bin/echo --greeting hi", want: []string{"../bin/echo", "--greeting", "hi"}},
		{in: "  a \t b  ", want: []string{"a", "b"}},
		{in: `echo 'hello world'`, want: []string{"echo", "hello world"}},
		{in: `echo "hello world"`, want: []string{"echo", "hello world"}},
		{in: `echo "a \"quoted\" word"`, want: []string{"echo", `a "quoted" word`}},
		{in: `echo "back\\slash" "keep\n"`, want: []string{"echo", `back\slash`, `keep\n`}},
		{in: `echo 'no \escape here'`, want: []string{"echo", `no \escape here`}},
		{in: `echo hello\ world`, want: []string{"echo", "hello world"}},
		{in: `echo a'b'"c"d`, want: []string{"echo", "abcd"}},
		{in: `echo '' ""`, want: []string{"echo", "", ""}},
		{in: `sh -c 'echo $HOME | tr a-z A-Z; exit 0'`, want: []string{"sh", "-c", "echo $HOME | tr a-z A-Z; exit 0"}},
		{in: `echo \$HOME "\$x"`, want: []string{"echo", "$HOME", "$x"}},
		{in: `echo a#b '#c' \#d`, want: []string{"echo", "a#b", "#c", "#d"}},
		{in: `echo a#b # a comment`, err: `"#" at the start of a word begins a comment`},
		{in: `# only a comment`, err: `"#" at the start of a word begins a comment`},
		{in: "", want: nil},
		{in: `--opt=*.txt`, want: []string{"--opt=*.txt"}},

		{in: `echo "unterminated`, err: "unterminated double quote in command"},
		{in: `echo 'unterminated`, err: "unterminated single quote in command"},
		{in: `echo trailing\`, err: "command ends with a backslash"},
		{in: `echo hi > /tmp/out`, err: `">" is shell syntax`},
		{in: `a | b`, err: `"|" is shell syntax`},
		{in: `a && b`, err: `"&" is shell syntax`},
		{in: `a; b`, err: `";" is shell syntax`},
		{in: `echo $HOME`, err: `"$" is shell syntax`},
		{in: `echo "$HOME"`, err: `"$" is shell syntax`},
		{in: "echo `date`", err: "\"`\" is shell syntax"},
		{in: `echo (x)`, err: `"(" is shell syntax`},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("splitCommand(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
