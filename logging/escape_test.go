package logging

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// terminalUnsafe names the first thing in b that could act on a terminal,
// or returns "".
func terminalUnsafe(b []byte) string {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			return fmt.Sprintf("the raw byte %#x", b[0])
		case r < 0x20 && r != '\t', r == 0x7f, unsafeRune(r):
			return fmt.Sprintf("the raw %U", r)
		}
		b = b[n:]
	}
	return ""
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, tab\there", "plain text, tab\there"},
		{"ü € 漢字 🙂", "ü € 漢字 🙂"},
		{"a\nb\rc", `a\nb\rc`},
		{"\x1b]0;owned\x07\x1b[2J", `\x1b]0;owned\x07\x1b[2J`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"raw CSI \x9b31m", `raw CSI \x9b31m`},
		{"C1 CSI \u009b31m, NEL \u0085", `C1 CSI \u009b31m, NEL \u0085`},
		{"evil\u202egnp.exe", `evil\u202egnp.exe`},
		{"\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c", `\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"truncated \xe2\x80", `truncated \xe2\x80`},
		{`already \x1b escaped \u202e`, `already \x1b escaped \u202e`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := Escape(Escape(tc.in)); got != tc.want {
			t.Errorf("Escape is not idempotent on %q: %q", tc.in, got)
		}
	}
}

func TestJSONEscapeIsLossless(t *testing.T) {
	for _, s := range []string{"plain", "\x1b[31m\u009b\u202e\u2066x\u2029\x7f", "ü € 漢字 🙂 \u0085"} {
		enc, err := json.Marshal(map[string]string{"k": s})
		if err != nil {
			t.Fatal(err)
		}
		out := JSONEscape(enc)
		if bad := terminalUnsafe(out); bad != "" {
			t.Errorf("JSONEscape(%s) = %s holds %s", enc, out, bad)
		}
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil || back["k"] != s {
			t.Errorf("JSONEscape(%s) = %s reads back as %q, %v; want %q", enc, out, back["k"], err, s)
		}
	}
}

// FuzzEscape: nothing that acts on a terminal survives either escape, the
// text escape is idempotent, and the JSON one keeps a JSON value the same.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"a\x1b[31mb", "\x9b", "\u009b\u202e", "\xe2\x80\xae", `{"k":"\u202e"}`, "\x7f\t\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		esc := AppendEscaped(nil, data)
		if bad := terminalUnsafe(esc); bad != "" {
			t.Fatalf("AppendEscaped(%q) = %q holds %s", data, esc, bad)
		}
		if again := AppendEscaped(nil, esc); string(again) != string(esc) {
			t.Fatalf("not idempotent: %q -> %q -> %q", data, esc, again)
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		out := JSONEscape(data)
		var back any
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("JSONEscape(%q) = %q: %v", data, out, err)
		}
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(back)
		if string(a) != string(b) {
			t.Fatalf("JSONEscape changed the value: %s -> %s", a, b)
		}
		if utf8.Valid(data) {
			// Raw C0 controls cannot be in valid JSON but as whitespace
			// between tokens (which encoders do not write); the rest is escaped.
			ws := strings.NewReplacer("\n", "", "\r", "", "\t", "")
			if bad := terminalUnsafe([]byte(ws.Replace(string(out)))); bad != "" {
				t.Fatalf("JSONEscape(%q) = %q holds %s", data, out, bad)
			}
		}
	})
}
