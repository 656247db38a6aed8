package config

import (
	"regexp"
	"strings"

	"github.com/nsfd/nsfd/worker"
)

// envName matches an environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv are the variables the master sets for every worker.
var reservedEnv = worker.MasterEnv()

// checkEnvName says what is wrong with an environment variable name, or "".
func checkEnvName(name string) string {
	if !envName.MatchString(name) {
		return "not a valid environment variable name"
	}
	for _, r := range reservedEnv {
		if name == r {
			return "reserved: the master sets it for every worker"
		}
	}
	return ""
}

// parseEnvFile reads KEY=VALUE lines: blank lines and # comments are
// skipped, a leading "export " is dropped, and a value in matching single or
// double quotes loses them (\" and \\ are unescaped inside double quotes);
// an unquoted value ends at " #". Errors name path and the line.
func parseEnvFile(path string, data []byte) ([]string, Errors) {
	var (
		env  []string
		errs Errors
	)
	for i, line := range splitLines(stripBOM(data)) {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimSpace(rest)
		}
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok {
			errs = append(errs, &Error{File: path, Line: n, Msg: `not a "KEY=VALUE" line`})
			continue
		}
		if msg := checkEnvName(key); msg != "" {
			errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: msg})
			continue
		}
		val, msg := unquoteEnvValue(strings.TrimSpace(val))
		if msg != "" {
			errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: msg})
			continue
		}
		env = append(env, key+"="+val)
	}
	return env, errs
}

// unquoteEnvValue strips the quotes of an env_file value.
func unquoteEnvValue(v string) (string, string) {
	if v == "" {
		return "", ""
	}
	switch q := v[0]; q {
	case '\'', '"':
		end := -1
		for i := 1; i < len(v); i++ {
			if q == '"' && v[i] == '\\' {
				i++
				continue
			}
			if v[i] == q {
				end = i
				break
			}
		}
		if end < 0 {
			return "", "unterminated " + string(q) + " quote"
		}
		if rest := strings.TrimSpace(v[end+1:]); rest != "" && rest[0] != '#' {
			return "", "text after the closing quote"
		}
		inner := v[1:end]
		if q == '"' {
			inner = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(inner)
		}
		return inner, ""
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, ""
}

// mergeEnv appends add to env, a later KEY replacing an earlier one in place.
func mergeEnv(env []string, add ...string) []string {
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range env {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				env[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return env
}
