package logging

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// ModuleRoot is the name of the master's root logger; a daemon's records
// carry the module ModuleRoot + "." + daemon.
const ModuleRoot = "nsfd"

// formatter renders records into one reused buffer; it belongs to the writer
// goroutine.
type formatter struct {
	json bool
	buf  bytes.Buffer
	enc  *json.Encoder
	esc  []byte // a JSON record escaped
}

func newFormatter(jsonFormat bool) *formatter {
	f := &formatter{json: jsonFormat}
	f.enc = json.NewEncoder(&f.buf)
	f.enc.SetEscapeHTML(false)
	return f
}

// workerJSON is a worker line in the json format, fields in this order.
type workerJSON struct {
	Timestamp string `json:"@timestamp"`
	Level     string `json:"@level"`
	Module    string `json:"@module"`
	Message   string `json:"@message"`
	Daemon    string `json:"daemon"`
	PID       int    `json:"pid"`
	Stream    string `json:"stream"`
}

// worker renders a worker line as one record ending in a newline. The result
// is valid until the next call.
func (f *formatter) worker(t time.Time, daemon string, pid int, stream string, line []byte) []byte {
	f.buf.Reset()
	if f.json {
		// Encoding strings cannot fail; invalid UTF-8 becomes U+FFFD.
		_ = f.enc.Encode(workerJSON{
			Timestamp: t.UTC().Format(TimeLayout),
			Level:     "info",
			Module:    ModuleRoot + "." + daemon,
			Message:   string(line),
			Daemon:    daemon,
			PID:       pid,
			Stream:    stream,
		})
		return f.jsonSafe()
	}
	b := f.buf.AvailableBuffer()
	b = appendWorkerText(b, t, daemon, pid, stream, line)
	f.buf.Write(b)
	return f.buf.Bytes()
}

// appendWorkerText appends `TIME daemon[pid] stream: line` and a newline.
func appendWorkerText(b []byte, t time.Time, daemon string, pid int, stream string, line []byte) []byte {
	b = t.UTC().AppendFormat(b, TimeLayout)
	b = append(b, ' ')
	b = AppendEscaped(b, []byte(daemon))
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, "] "...)
	b = AppendEscaped(b, []byte(stream))
	b = append(b, ':')
	if len(line) > 0 {
		b = append(b, ' ')
		b = AppendEscaped(b, line)
	}
	return append(b, '\n')
}

// master renders a record hclog formatted. A JSON record is one line already;
// a text record may span lines (multi-line field values, stack traces), which
// are joined into one by escaping.
func (f *formatter) master(p []byte) []byte {
	f.buf.Reset()
	p = bytes.TrimSuffix(p, []byte{'\n'})
	b := f.buf.AvailableBuffer()
	if f.json {
		b = AppendJSONEscaped(b, p)
	} else {
		b = AppendEscaped(b, p)
	}
	b = append(b, '\n')
	f.buf.Write(b)
	return f.buf.Bytes()
}

// jsonSafe escapes the JSON record in f.buf as AppendJSONEscaped does and
// returns it; the result is valid until the next call.
func (f *formatter) jsonSafe() []byte {
	rec := f.buf.Bytes()
	for _, c := range rec {
		if c >= 0x7f {
			f.esc = AppendJSONEscaped(f.esc[:0], rec)
			return f.esc
		}
	}
	return rec
}
