package wire

import (
	"fmt"
	"strings"
)

// opError is an error with the operation that failed: "wire: OP: ERR", with
// a "wire: " that ERR starts with left out, so wrapped errors of this
// package read "wire: call "get": read: frame too large", not "wire: ...:
// wire: ...".
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string {
	return "wire: " + e.op + ": " + strings.TrimPrefix(e.err.Error(), "wire: ")
}

func (e *opError) Unwrap() error { return e.err }

// wrap returns err with the operation described by format and args.
func wrap(err error, format string, args ...any) error {
	return &opError{op: fmt.Sprintf(format, args...), err: err}
}
