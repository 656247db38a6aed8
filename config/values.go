package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// parseCount parses a non-negative decimal integer.
func parseCount(s string) (int, error) {
	if !isDigits(strings.TrimPrefix(s, "-")) {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("must not be negative (got %d)", n)
	}
	return n, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseDuration parses a Go duration ("10s", "1m30s") or, as Net::Server
// does, a bare integer of seconds. Negative durations are errors.
func parseDuration(s string) (time.Duration, error) {
	if isDigits(strings.TrimPrefix(s, "-")) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		if n < 0 {
			return 0, fmt.Errorf("duration must not be negative (got %s)", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write 10s, 1m30s, or a number of seconds)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration must not be negative (got %s)", s)
	}
	return d, nil
}

// parseMode parses an octal permission mode or umask, at most 0777.
func parseMode(s string) (int, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil || t == "" || t[0] == '+' {
		return 0, fmt.Errorf("%q is not an octal mode (write e.g. 0660)", s)
	}
	if n > 0o777 {
		return 0, fmt.Errorf("mode %s is out of range (at most 0777)", s)
	}
	return int(n), nil
}

// sizeUnits are the suffixes parseSize accepts, all powers of 1024.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// parseSize parses a byte count with an optional K, M, G (or KiB, MiB, GiB,
// KB, MB, GB) suffix, all powers of 1024.
func parseSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	lower := strings.ToLower(num)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	bad := fmt.Errorf("%q is not a size (write a number of bytes, or one with K, M or G)", s)
	if !isDigits(num) {
		if strings.HasPrefix(num, "-") && isDigits(num[1:]) {
			return 0, fmt.Errorf("size must not be negative (got %s)", s)
		}
		return 0, bad
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// Unlimited is the value of a Limits entry set to "unlimited" (RLIM_INFINITY).
const Unlimited = math.MaxUint64

// parseLimit parses a resource limit: a non-negative integer or "unlimited".
func parseLimit(s string) (uint64, error) {
	if strings.EqualFold(s, "unlimited") || strings.EqualFold(s, "infinity") {
		return Unlimited, nil
	}
	if !isDigits(s) {
		return 0, fmt.Errorf("%q is not an integer or \"unlimited\"", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large (write \"unlimited\")", s)
	}
	return n, nil
}

// splitList splits a comma- or space-separated list, dropping empty items.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t'
	})
}

// keyLoader applies the entries of one file, gathering the errors and the
// line of each key that is set.
type keyLoader struct {
	path  string         // as given to the loader
	errs  Errors         // every problem so far
	lines map[string]int // "section.key" of each key set -> its line
}

// fail records a problem with entry e.
func (l *keyLoader) fail(e entry, msg string) {
	l.errs = append(l.errs, &Error{File: l.path, Line: e.Line, Key: e.Key, Msg: msg})
}

// count sets *dst to e's non-negative integer.
func (l *keyLoader) count(e entry, dst *int) {
	if n, err := parseCount(e.Value); err != nil {
		l.fail(e, err.Error())
	} else {
		*dst = n
	}
}

// duration sets *dst to e's duration.
func (l *keyLoader) duration(e entry, dst *time.Duration) {
	if d, err := parseDuration(e.Value); err != nil {
		l.fail(e, err.Error())
	} else {
		*dst = d
	}
}

// boolean sets *dst to e's true/false (also yes/no, on/off, 1/0).
func (l *keyLoader) boolean(e entry, dst *bool) {
	switch strings.ToLower(e.Value) {
	case "true", "yes", "on", "1":
		*dst = true
	case "false", "no", "off", "0":
		*dst = false
	default:
		l.fail(e, fmt.Sprintf("unknown value %q (want true or false)", e.Value))
	}
}

// oneOf sets *dst to e's value, one of allowed (compared without case).
func (l *keyLoader) oneOf(e entry, dst *string, allowed []string) {
	for _, a := range allowed {
		if strings.EqualFold(e.Value, a) {
			*dst = a
			return
		}
	}
	l.fail(e, fmt.Sprintf("unknown value %q (want %s)", e.Value, orList(allowed)))
}

// orList renders "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// line returns the line of key (in section, "" for a daemon file) if set, or 0.
func (l *keyLoader) line(section, key string) int {
	return l.lines[section+"."+key]
}

// sortErrors orders errs by file, then line, keeping the order of equals.
func sortErrors(errs Errors) {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
}
