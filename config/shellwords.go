package config

import (
	"errors"
	"fmt"
	"strings"
)

// splitCommand splits a command line into argv as a POSIX shell would split
// words: blanks separate, single quotes keep everything, double quotes keep
// all but \" \\ \$ \`, and a backslash outside quotes escapes the next
// character. Nothing is expanded, so shell syntax that would expand,
// redirect or end the command (unquoted | & ; < > ( ), $ or ` outside
// single quotes, and # at the start of a word, a shell's comment) is an
// error rather than a surprise: no part of a command is silently dropped.
func splitCommand(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool // a word has started, possibly empty ("")
	)
	end := func() {
		if inArg {
			args = append(args, cur.String())
			cur.Reset()
			inArg = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			end()
		case c == '#' && !inArg:
			return nil, errors.New(`"#" at the start of a word begins a comment in a shell, which would drop the rest of the command (quote it with '', or put a comment on a line of its own)`)
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("command ends with a backslash")
			}
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
				inArg = true
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote in command")
			}
			cur.WriteString(s[i+1 : i+1+j])
			inArg = true
			i += j + 1
		case c == '"':
			inArg = true
			closed := false
			for i++; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						cur.WriteByte(s[i])
					}
					continue
				}
				if c == '$' || c == '`' {
					return nil, shellSyntax(c)
				}
				cur.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("unterminated double quote in command")
			}
		case strings.IndexByte("|&;<>()$`", c) >= 0:
			return nil, shellSyntax(c)
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	end()
	return args, nil
}

func shellSyntax(c byte) error {
	return fmt.Errorf("%q is shell syntax, but the command is not run through a shell (quote it with '', or run sh -c '...')", string(c))
}
