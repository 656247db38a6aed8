package config

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a problem in a configuration file. It names the file, the line and
// the key, says what is wrong and, for an unknown key, the nearest known one.
type Error struct {
	File string // path as given to the loader
	Line int    // 1-based; 0 when the problem is not tied to a line
	Key  string // empty for file-level problems
	Msg  string
	Hint string // e.g. `did you mean "min_servers"?`
	Err  error  // a sentinel such as ErrNoCommand, or nil; not rendered
}

// Error renders "file:line: key "k": msg (hint)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	return b.String()
}

// Unwrap returns the sentinel the problem wraps, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one pass over one or more files.
type Errors []*Error

// Error joins the problems one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ErrNoCommand is wrapped by the error of a daemon that has neither command nor builtin.
var ErrNoCommand = errors.New("no command")
