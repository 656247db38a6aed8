package logging

import (
	"unicode/utf8"
)

// What reaches an operator's terminal from a worker (its output lines, its
// STATUS= text, a daemon's name) must not act on the terminal: no control
// sequence (ESC and C1, 0x9b being CSI on its own in 8-bit terminals), no
// bidirectional override that shows text in another order than it is,
// nothing that ends a line. Escape is the text form, for the central log's
// text format and every plain-text output of the CLI; JSONEscape keeps a
// JSON document the same value and makes it as safe.

// AppendEscaped appends p to b with what could act on a terminal escaped:
// \n and \r as such, other C0 controls, DEL and bytes that are not UTF-8
// as \xNN, and the C1 controls (U+0080–U+009F), the bidirectional controls
// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the line and
// paragraph separators (U+2028, U+2029) as \uNNNN. Tab and everything else,
// backslashes included, is copied verbatim, so escaping is idempotent.
func AppendEscaped(b, p []byte) []byte {
	const hex = "0123456789abcdef"
	for len(p) > 0 {
		safe := 0 // a run of bytes copied as they are
		for safe < len(p) && (p[safe] >= 0x20 && p[safe] < 0x7f || p[safe] == '\t') {
			safe++
		}
		b, p = append(b, p[:safe]...), p[safe:]
		if len(p) == 0 {
			break
		}
		c := p[0]
		if c < utf8.RuneSelf {
			switch c {
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			default:
				b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			}
			p = p[1:]
			continue
		}
		r, n := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
		case unsafeRune(r):
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		default:
			b = append(b, p[:n]...)
		}
		p = p[n:]
	}
	return b
}

// Escape returns s escaped as AppendEscaped does.
func Escape(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c >= 0x7f {
			return string(AppendEscaped(make([]byte, 0, len(s)+8), []byte(s)))
		}
	}
	return s
}

// unsafeRune reports whether r is a C1 control, a bidirectional control or a
// line or paragraph separator: runes AppendEscaped writes as \uNNNN.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f,
		r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x2028 && r <= 0x202e,
		r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// AppendJSONEscaped appends the JSON text p to b with DEL and the runes
// AppendEscaped writes as \uNNNN written as JSON \u escapes. They can only
// stand inside strings of a valid JSON text, so the result is the same JSON
// value, byte for byte elsewhere: lossless, and safe to print. encoding/json
// already escapes the C0 controls and replaces bytes that are not UTF-8.
func AppendJSONEscaped(b, p []byte) []byte {
	const hex = "0123456789abcdef"
	for len(p) > 0 {
		safe := 0
		for safe < len(p) && p[safe] < 0x7f {
			safe++
		}
		b, p = append(b, p[:safe]...), p[safe:]
		if len(p) == 0 {
			break
		}
		r, n := utf8.DecodeRune(p)
		if r == 0x7f || unsafeRune(r) {
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		} else {
			b = append(b, p[:n]...)
		}
		p = p[n:]
	}
	return b
}

// JSONEscape returns the JSON text p escaped as AppendJSONEscaped does.
func JSONEscape(p []byte) []byte {
	for _, c := range p {
		if c >= 0x7f {
			return AppendJSONEscaped(make([]byte, 0, len(p)+16), p)
		}
	}
	return p
}
