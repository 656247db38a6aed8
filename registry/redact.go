package registry

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// redacted replaces a password.
const redacted = "xxxxx"

// Redact returns dsn with its passwords replaced by xxxxx, for logs and error
// messages: the userinfo password and the password and sslpassword query
// parameters of a URL (postgres://u:secret@h/db → postgres://u:xxxxx@h/db),
// and the password and sslpassword of a key=value string (host=h
// password=secret → host=h password=xxxxx, password='a secret' →
// password='xxxxx'). The rest
// of dsn is kept as it was written. A malformed URL is redacted generously
// rather than risk showing a password.
func Redact(dsn string) string {
	secrets := findPasswords(dsn)
	if len(secrets) == 0 {
		return dsn
	}
	var b strings.Builder
	last := 0
	for _, s := range secrets {
		b.WriteString(dsn[last:s.from])
		if s.quoted {
			b.WriteString("'" + redacted + "'") // a quoted key=value password
		} else {
			b.WriteString(redacted)
		}
		last = s.to
	}
	b.WriteString(dsn[last:])
	return b.String()
}

// Passwords returns the passwords in dsn as written and as decoded: what
// Scrub removes from the error texts of a driver that opens dsn.
func Passwords(dsn string) []string {
	var ps []string
	for _, s := range findPasswords(dsn) {
		ps = append(ps, dsn[s.from:s.to])
		if s.value != dsn[s.from:s.to] {
			ps = append(ps, s.value)
		}
	}
	return ps
}

// scrubbed is an error whose text has a password replaced; errors.Is and
// errors.As still see the original.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// Scrub returns err with every occurrence of the passwords (plain or
// URL-escaped) in its text replaced by xxxxx; errors.Is and errors.As still
// see the original. Drivers scrub their errors with what Passwords found in
// the DSN, since a database's error may quote it.
func Scrub(err error, passwords []string) error {
	if err == nil || len(passwords) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, p := range passwords {
		for _, form := range []string{p, url.QueryEscape(p), url.PathEscape(p)} {
			if form != "" {
				clean = strings.ReplaceAll(clean, form, redacted)
			}
		}
	}
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

// A secret is a password in a DSN: the bytes dsn[from:to] to replace, and
// its decoded value.
type secret struct {
	from, to int
	value    string
	quoted   bool // a key=value password in single quotes
}

var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// findPasswords returns the non-empty passwords in dsn, in order.
func findPasswords(dsn string) []secret {
	var ss []secret
	if m := urlScheme.FindStringIndex(dsn); m != nil {
		ss = urlPasswords(dsn, m[1])
	} else {
		ss = keyValuePasswords(dsn)
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].from < ss[j].from })
	return ss
}

// urlPasswords finds the passwords of a URL whose authority starts at start.
// The userinfo ends at the last '@' before the query; if there is none there
// (a '?' in an unescaped password), at the last '@' anywhere.
func urlPasswords(dsn string, start int) []secret {
	var ss []secret
	rest := dsn[start:]
	query := strings.IndexByte(rest, '?')
	if query < 0 {
		query = len(rest)
	}
	at := strings.LastIndexByte(rest[:query], '@')
	if at < 0 {
		at = strings.LastIndexByte(rest, '@')
	}
	if at >= 0 {
		if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 && colon+1 < at {
			from, to := start+colon+1, start+at
			ss = append(ss, secret{from: from, to: to, value: unescape(dsn[from:to])})
			if to > start+query {
				return ss // the query was inside the userinfo
			}
		}
	}
	if query == len(rest) {
		return ss
	}
	// password=… and sslpassword=… among the query parameters.
	pos := start + query + 1
	end := strings.IndexByte(dsn[pos:], '#')
	if end < 0 {
		end = len(dsn)
	} else {
		end += pos
	}
	for pos < end {
		next := strings.IndexByte(dsn[pos:end], '&')
		if next < 0 {
			next = end
		} else {
			next += pos
		}
		param := dsn[pos:next]
		if eq := strings.IndexByte(param, '='); eq >= 0 && isSecretKey(unescape(param[:eq])) && eq+1 < len(param) {
			ss = append(ss, secret{from: pos + eq + 1, to: next, value: unescape(param[eq+1:])})
		}
		pos = next + 1
	}
	return ss
}

// isSecretKey reports the DSN parameters that hold secrets: password, and
// sslpassword (the passphrase of the client's TLS key).
func isSecretKey(k string) bool { return k == "password" || k == "sslpassword" }

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// keyValuePasswords finds the password values of a libpq key=value string:
// keys and values separated by '=' with optional spaces around it, values
// bare or in single quotes, backslash escaping a quote or backslash.
func keyValuePasswords(dsn string) []secret {
	var ss []secret
	i, n := 0, len(dsn)
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	for i < n {
		for i < n && space(dsn[i]) {
			i++
		}
		k := i
		for i < n && dsn[i] != '=' && !space(dsn[i]) {
			i++
		}
		key := dsn[k:i]
		for i < n && space(dsn[i]) {
			i++
		}
		if i >= n || dsn[i] != '=' {
			continue // not key=value: skip the word
		}
		i++
		for i < n && space(dsn[i]) {
			i++
		}
		from := i
		var value strings.Builder
		quoted := i < n && dsn[i] == '\''
		if quoted {
			i++
			for i < n && dsn[i] != '\'' {
				if dsn[i] == '\\' && i+1 < n {
					i++
				}
				value.WriteByte(dsn[i])
				i++
			}
			if i < n {
				i++ // the closing quote
			}
		} else {
			for i < n && !space(dsn[i]) {
				if dsn[i] == '\\' && i+1 < n {
					i++
				}
				value.WriteByte(dsn[i])
				i++
			}
		}
		if isSecretKey(key) && value.Len() > 0 {
			ss = append(ss, secret{from, i, value.String(), quoted})
		}
	}
	return ss
}
