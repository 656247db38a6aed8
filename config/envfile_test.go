package config

import (
	"reflect"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	text := `# comment
GREETING=hi

export LANG=C.UTF-8
  SPACED = value with blanks  
SQ='a # not a comment'
DQ="say \"hi\" \\ there"
EMPTY=
INLINE=value # comment
URL=http://x/#frag
QUOTED_COMMENT="v" # comment
`
	want := []string{
		"GREETING=hi",
		"LANG=C.UTF-8",
		"SPACED=value with blanks",
		"SQ=a # not a comment",
		`DQ=say "hi" \ there`,
		"EMPTY=",
		"INLINE=value",
		"URL=http://x/#frag",
		"QUOTED_COMMENT=v",
	}
	got, errs := parseEnvFile("app.env", []byte(text))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	for i, tt := range []struct{ text, err string }{
		{"no equals sign", `app.env:1: not a "KEY=VALUE" line`},
		{"1BAD=x", `app.env:1: key "1BAD": not a valid environment variable name`},
		{"\n\nA='open", `app.env:3: key "A": unterminated ' quote`},
		{`B="open`, `app.env:1: key "B": unterminated " quote`},
		{"C='a'b", `app.env:1: key "C": text after the closing quote`},
		{"LISTEN_FDS=3", `app.env:1: key "LISTEN_FDS": reserved: the master sets it for every worker`},
	} {
		_, errs := parseEnvFile("app.env", []byte(tt.text))
		if len(errs) != 1 || errs[0].Error() != tt.err {
			t.Errorf("%d: parseEnvFile(%q) errors = %v, want %s", i, tt.text, errs, tt.err)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2"}, "C=3", "A=4")
	if want := []string{"A=4", "B=2", "C=3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
}
