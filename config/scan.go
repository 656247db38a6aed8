package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"gopkg.in/ini.v1"
)

// entry is one key of a file with its value and the line it is on.
type entry struct {
	Section string // "" for the default section
	Key     string
	Value   string
	Line    int
	raw     string // INI: the text after the delimiter, as ini.v1 sees it
}

// header is one [section] line of an INI file.
type header struct {
	Name string
	Line int
}

// rawFile is a configuration file read into its entries, in file order.
type rawFile struct {
	Path    string // as given to the loader
	Conf    bool   // Net::Server conf format
	Entries []entry
	Headers []header
}

// iniOptions are the gopkg.in/ini.v1 options of every nsfd INI file: keys
// may repeat (port), values are single lines, and an inline comment starts
// with " ;" or " #" so that values such as `sh -c 'a;b'` survive.
var iniOptions = ini.LoadOptions{
	AllowShadows:               true,
	AllowDuplicateShadowValues: true,
	IgnoreContinuation:         true,
	SpaceBeforeInlineComment:   true,
	KeyValueDelimiters:         "=:",
}

// parseFile reads data as INI or, when conf is true, as a Net::Server conf
// file. Syntax errors carry the path and line.
func parseFile(path string, data []byte, conf bool) (*rawFile, Errors) {
	if conf {
		return parseConf(path, data)
	}
	return parseINI(path, data)
}

// isConfFormat tells whether a daemon file is in Net::Server's conf format:
// a .conf extension, or a first meaningful line that is neither a [section]
// nor `key =` / `key:`.
func isConfFormat(path string, data []byte) bool {
	if filepath.Ext(path) == ".conf" {
		return true
	}
	for _, line := range splitLines(stripBOM(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		return !iniFirstLine.MatchString(line)
	}
	return false
}

// iniFirstLine matches the first meaningful line of an INI file: a section
// header, a quoted key, or a key followed by "=" or ":".
var iniFirstLine = regexp.MustCompile("^(\\[|[\"`]|[^\\s=:]+\\s*[=:])")

// stripBOM removes a byte order mark, as ini.v1 does.
func stripBOM(data []byte) []byte {
	switch {
	case len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF:
		return data[3:]
	case len(data) >= 2 && (data[0] == 0xFE && data[1] == 0xFF || data[0] == 0xFF && data[1] == 0xFE):
		return data[2:]
	}
	return data
}

// splitLines splits data after each "\n", keeping it, as ini.v1 reads lines.
func splitLines(data []byte) []string {
	s := string(data)
	var lines []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

// parseINI reads an INI file. ini.v1 has the last word on values; a scan of
// the raw text that follows ini.v1's own parser gives every key its line and
// every syntax error its line.
func parseINI(path string, data []byte) (*rawFile, Errors) {
	rf, errs := scanINI(path, data)
	if len(errs) > 0 {
		return nil, errs
	}
	f, err := loadINI(data)
	if err != nil {
		return nil, Errors{&Error{File: path, Line: lineOf(data, err.Error()), Msg: "syntax error: " + err.Error()}}
	}
	fillINIValues(rf, f)
	return rf, nil
}

// loadINI runs ini.v1, turning a panic in it into an error.
func loadINI(data []byte) (f *ini.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return ini.LoadSources(iniOptions, data)
}

// lineOf finds the line an ini.v1 error message quotes, or 0.
func lineOf(data []byte, msg string) int {
	msg = strings.TrimSpace(msg)
	for i, line := range splitLines(stripBOM(data)) {
		if line = strings.TrimSpace(line); line != "" && strings.HasSuffix(msg, line) {
			return i + 1
		}
	}
	return 0
}

// scanINI follows ini.v1's parser line by line and records each section
// header, each key with its line and raw value, and each syntax error.
func scanINI(path string, data []byte) (*rawFile, Errors) {
	rf := &rawFile{Path: path}
	var errs Errors
	section := ""
	lines := splitLines(stripBOM(data))
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimLeftFunc(lines[i], unicode.IsSpace)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.LastIndexByte(line, ']')
			if end < 0 {
				errs = append(errs, &Error{File: path, Line: n, Msg: `syntax error: section header without "]"`})
				continue
			}
			name := line[1:end]
			if name == "" {
				errs = append(errs, &Error{File: path, Line: n, Msg: "syntax error: empty section name"})
				continue
			}
			if name == ini.DefaultSection {
				name = ""
			}
			section = name
			rf.Headers = append(rf.Headers, header{Name: name, Line: n})
			continue
		}
		key, off, msg := iniKeyName(line)
		if msg != "" {
			errs = append(errs, &Error{File: path, Line: n, Msg: "syntax error: " + msg})
			continue
		}
		raw := line[off:]
		v := strings.TrimLeftFunc(raw, unicode.IsSpace)
		q := ""
		if len(v) > 3 && v[:3] == `"""` {
			q = `"""`
		} else if v != "" && v[0] == '`' {
			q = "`"
		}
		if q != "" && !strings.Contains(v[len(q):], q) {
			j := i + 1
			for j < len(lines) && !strings.Contains(lines[j], q) {
				j++
			}
			if j == len(lines) {
				errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: "syntax error: value opened with " + q + " is never closed"})
				break
			}
			raw += strings.Join(lines[i+1:j+1], "")
			i = j
		}
		rf.Entries = append(rf.Entries, entry{Section: section, Key: key, Line: n, raw: raw})
	}
	return rf, errs
}

// iniKeyName reads the key name of a left-trimmed line as ini.v1 does. It
// returns the name and the offset of the value, or a syntax error message.
func iniKeyName(line string) (key string, off int, msg string) {
	const delims = "=:"
	quote := ""
	switch line[0] {
	case '"':
		quote = `"`
		if len(line) > 6 && line[:3] == `"""` {
			quote = `"""`
		}
	case '`':
		quote = "`"
	}
	if quote != "" {
		start := len(quote)
		pos := strings.Index(line[start:], quote)
		if pos < 0 {
			return "", 0, "key opened with " + quote + " is never closed"
		}
		pos += start
		i := strings.IndexAny(line[pos+start:], delims)
		if i < 0 {
			return "", 0, `not a "key = value" line`
		}
		key = strings.TrimSpace(line[start:pos])
		if key == "" {
			return "", 0, "empty key name"
		}
		return key, pos + i + start + 1, ""
	}
	end := strings.IndexAny(line, delims)
	if end < 0 {
		return "", 0, `not a "key = value" line`
	}
	if end == 0 {
		return "", 0, `no key before "` + line[:1] + `"`
	}
	return strings.TrimSpace(line[:end]), end + 1, ""
}

// fillINIValues takes each entry's value from ini.v1. A repeated key's values
// come in file order, without the empty ones; they are matched to the
// entries whose raw text holds them. A value starting with ";" or "#" is a
// comment: `node_name = ; default: hostname` leaves node_name empty.
func fillINIValues(rf *rawFile, f *ini.File) {
	type sk struct{ section, key string }
	groups := map[sk][]int{}
	var order []sk
	for i, e := range rf.Entries {
		k := sk{e.Section, e.Key}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		name := k.section
		if name == "" {
			name = ini.DefaultSection
		}
		sec, err := f.GetSection(name)
		if err != nil {
			continue
		}
		key, err := sec.GetKey(k.key)
		if err != nil {
			continue
		}
		vals := key.ValueWithShadows()
		idx := groups[k]
		j := 0
		for _, i := range idx {
			e := &rf.Entries[i]
			if j < len(vals) && (len(vals) == len(idx) || strings.Contains(e.raw, vals[j])) {
				e.Value = vals[j]
				j++
			}
			if t := strings.TrimSpace(e.raw); t != "" && (t[0] == ';' || t[0] == '#') {
				e.Value = ""
			}
		}
	}
}

// confKey is a key of a Net::Server conf file.
var confKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseConf reads a Net::Server conf file: `key value` lines, `#` comments.
// A key alone on its line has an empty value.
func parseConf(path string, data []byte) (*rawFile, Errors) {
	rf := &rawFile{Path: path, Conf: true}
	var errs Errors
	for i, line := range splitLines(stripBOM(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if k, v, ok := strings.Cut(line, "\t"); ok && len(k) < len(key) {
			key, value = k, v
		}
		if !confKey.MatchString(key) {
			err := &Error{File: path, Line: i + 1, Msg: `not a "key value" line`}
			if k, v, ok := strings.Cut(line, "="); ok && confKey.MatchString(strings.TrimSpace(k)) {
				err.Hint = fmt.Sprintf("write %q", strings.TrimSpace(k)+" "+strings.TrimSpace(v))
			} else if k, v, ok := strings.Cut(line, ":"); ok && confKey.MatchString(strings.TrimSpace(k)) {
				err.Hint = fmt.Sprintf("write %q", strings.TrimSpace(k)+" "+strings.TrimSpace(v))
			}
			errs = append(errs, err)
			continue
		}
		rf.Entries = append(rf.Entries, entry{Key: key, Value: strings.TrimSpace(value), Line: i + 1})
	}
	return rf, errs
}
