package config

import (
	"fmt"
	"strings"
)

// hookCommand parses a hook's command line as `command` is parsed: split
// like a POSIX shell would but never run through one, a program path with a
// slash relative to dir, no comment on its line.
func (l *keyLoader) hookCommand(e entry, dir string) ([]string, bool) {
	argv, err := splitCommand(e.Value)
	switch {
	case droppedComment(e) != "":
		l.fail(e, fmt.Sprintf("%q would be dropped as a comment: put a comment on a line of its own", droppedComment(e)))
	case err != nil:
		l.fail(e, err.Error())
	case len(argv) == 0 || argv[0] == "":
		l.fail(e, "empty command")
	default:
		if strings.Contains(argv[0], "/") {
			argv[0] = resolve(dir, argv[0])
		}
		return argv, true
	}
	return nil, false
}
