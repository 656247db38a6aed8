package logging

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Record is one record of the central log, as ParseRecord reads it back.
type Record struct {
	Time    time.Time
	Level   string // trace, debug, info, warn or error; worker lines are info
	Module  string // hclog module: "nsfd", "nsfd.echo"
	Daemon  string // "echo" for module nsfd.echo and for worker lines of echo
	PID     int    // the worker's pid, or a master record's pid field
	Stream  string // stdout or stderr for worker lines, empty for master records
	Message string
	Fields  map[string]string // a master record's other fields; nil if none
}

// ParseRecord parses one line of the central log, text or json, master
// record or worker line; ok is false for a line that is neither (such as a
// line of a foreign file). In the text format the message comes back as
// written, control characters escaped, and a master record's fields are
// found by their key=value shape, so a message that itself ends in
// ": k=v" reads back as fields: the json format is exact.
func ParseRecord(line []byte) (rec Record, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 0 && line[0] == '{' {
		return parseJSON(line)
	}
	return parseText(string(line))
}

func parseText(s string) (Record, bool) {
	var rec Record
	ts, rest, ok := strings.Cut(s, " ")
	if !ok {
		return rec, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return rec, false
	}
	rec.Time = t
	if strings.HasPrefix(rest, "[") {
		return parseTextMaster(rec, rest)
	}
	return parseTextWorker(rec, rest)
}

// parseTextWorker parses `daemon[pid] stream: message`.
func parseTextWorker(rec Record, s string) (Record, bool) {
	end := strings.Index(s, "] ")
	if end < 0 {
		return rec, false
	}
	open := strings.LastIndexByte(s[:end], '[')
	if open <= 0 {
		return rec, false
	}
	pid, err := strconv.Atoi(s[open+1 : end])
	if err != nil || pid < 0 {
		return rec, false
	}
	stream, msg, ok := strings.Cut(s[end+2:], ":")
	if !ok || stream == "" || strings.ContainsRune(stream, ' ') {
		return rec, false
	}
	if msg != "" {
		if msg[0] != ' ' {
			return rec, false
		}
		msg = msg[1:]
	}
	rec.Level = "info"
	rec.Daemon = s[:open]
	rec.Module = ModuleRoot + "." + rec.Daemon
	rec.PID = pid
	rec.Stream = stream
	rec.Message = msg
	return rec, true
}

// parseTextMaster parses hclog's `[LEVEL] module: message: k=v k="v"`.
func parseTextMaster(rec Record, s string) (Record, bool) {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return rec, false
	}
	level := strings.ToLower(strings.TrimSpace(s[1:end]))
	switch level {
	case "trace", "debug", "info", "warn", "error":
	default:
		return rec, false
	}
	rec.Level = level
	body := strings.TrimLeft(s[end+1:], " ")
	// The module is a first word ending in a colon: hclog writes
	// "name: message", and nsfd's loggers all have a name.
	if word, after, ok := strings.Cut(body, " "); ok && strings.HasSuffix(word, ":") {
		rec.Module, body = strings.TrimSuffix(word, ":"), after
	} else if strings.HasSuffix(body, ":") && !strings.Contains(body, " ") {
		rec.Module, body = strings.TrimSuffix(body, ":"), ""
	}
	rec.Daemon = daemonOf(rec.Module)
	rec.Message = body
	// The fields start at the first ": " after which everything parses as
	// key=value pairs; fields without a message follow the module directly.
	if f, ok := parseFields(" " + body); ok && rec.Module != "" {
		rec.Message, rec.Fields = "", f
	} else {
		for i := strings.Index(body, ": "); i >= 0; {
			if f, ok := parseFields(body[i+1:]); ok {
				rec.Message, rec.Fields = body[:i], f
				break
			}
			j := strings.Index(body[i+2:], ": ")
			if j < 0 {
				break
			}
			i += 2 + j
		}
	}
	rec.takePID()
	return rec, true
}

// parseFields parses hclog's ` k=v k="quoted \"v\"" k=[a, b]`: each pair
// preceded by one space, up to the end of s.
func parseFields(s string) (map[string]string, bool) {
	if s == "" {
		return nil, false
	}
	fields := make(map[string]string)
	for s != "" {
		if s[0] != ' ' {
			return nil, false
		}
		s = s[1:]
		eq := strings.IndexAny(s, "= \"")
		if eq <= 0 || s[eq] != '=' {
			return nil, false
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		switch {
		case strings.HasPrefix(s, `"`):
			n := quotedLen(s)
			if n < 0 {
				return nil, false
			}
			val = s[:n]
			if u, err := strconv.Unquote(val); err == nil {
				val = u
			} else {
				val = val[1 : n-1]
			}
			s = s[n:]
		case strings.HasPrefix(s, "["):
			n := strings.Index(s, "] ")
			if n < 0 {
				if !strings.HasSuffix(s, "]") {
					return nil, false
				}
				n = len(s) - 1
			}
			val, s = s[:n+1], s[n+1:]
		default:
			n := strings.IndexByte(s, ' ')
			if n < 0 {
				n = len(s)
			}
			if n == 0 {
				return nil, false
			}
			val, s = s[:n], s[n:]
		}
		fields[key] = val
	}
	return fields, true
}

// quotedLen returns the length of the double-quoted string s starts with,
// quotes included, or -1 if it does not end.
func quotedLen(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

func parseJSON(line []byte) (Record, bool) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() {
		return rec, false
	}
	msg, ok := m["@message"].(string)
	if !ok {
		return rec, false
	}
	rec.Message = msg
	if ts, ok := m["@timestamp"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			rec.Time = t
		}
	}
	rec.Level, _ = m["@level"].(string)
	rec.Module, _ = m["@module"].(string)
	rec.Daemon = daemonOf(rec.Module)
	for k, v := range m {
		if strings.HasPrefix(k, "@") {
			continue
		}
		if rec.Fields == nil {
			rec.Fields = make(map[string]string)
		}
		if s, ok := v.(string); ok {
			rec.Fields[k] = s
		} else if b, err := json.Marshal(v); err == nil {
			rec.Fields[k] = string(b)
		}
	}
	// A worker line: its daemon, pid and stream are fields of their own.
	if stream, ok := rec.Fields["stream"]; ok {
		if d, ok := rec.Fields["daemon"]; ok {
			rec.Daemon, rec.Stream = d, stream
			delete(rec.Fields, "daemon")
			delete(rec.Fields, "stream")
		}
	}
	rec.takePID()
	return rec, true
}

// takePID moves a numeric pid field into rec.PID.
func (rec *Record) takePID() {
	if p, err := strconv.Atoi(rec.Fields["pid"]); err == nil && p >= 0 {
		rec.PID = p
		delete(rec.Fields, "pid")
	}
	if len(rec.Fields) == 0 {
		rec.Fields = nil
	}
}

// daemonOf returns the daemon a module belongs to: "echo" for "nsfd.echo"
// and "nsfd.echo.pool", "" for "nsfd" and foreign modules.
func daemonOf(module string) string {
	rest, ok := strings.CutPrefix(module, ModuleRoot+".")
	if !ok {
		return ""
	}
	d, _, _ := strings.Cut(rest, ".")
	return d
}
