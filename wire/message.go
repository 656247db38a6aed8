package wire

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Request is what a client sends: a command and its data, in the envelope
// of the Perl framework.
type Request struct {
	// Command names what the daemon is to do ("put", "get"); a Mux routes
	// on it.
	Command string `json:"command"`
	// User is who asks. The server copies it into Meta.User.
	User string `json:"user,omitempty"`
	// Pass is the user's password or token, for daemons that check one. It
	// is never sent back: a Response has no field that carries it, and
	// String leaves it out.
	Pass string `json:"pass,omitempty"`
	// ID identifies the request; the server answers with it as
	// Meta.Transaction, or generates a transaction id when it is empty.
	ID string `json:"id,omitempty"`
	// Data is the command's argument, as JSON text whatever the codec.
	Data json.RawMessage `json:"data,omitempty"`
	// Options are free-form settings for the command.
	Options map[string]any `json:"options,omitempty"`
}

// NewRequest returns a request for command whose Data is v encoded as JSON;
// a nil v leaves Data empty, and a json.RawMessage v is used as is (it
// must be valid JSON).
func NewRequest(command string, v any) (*Request, error) {
	data, err := marshalData(v)
	if err != nil {
		return nil, wrap(err, "request %q", command)
	}
	return &Request{Command: command, Data: data}, nil
}

// DecodeData decodes the request's Data into v. Empty Data leaves v as is.
func (r *Request) DecodeData(v any) error {
	if len(r.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return wrap(err, "decode %q data", r.Command)
	}
	return nil
}

// String describes the request for logs without its Pass and Data.
func (r Request) String() string {
	var b strings.Builder
	b.WriteString("command=")
	b.WriteString(strconv.Quote(r.Command))
	if r.User != "" {
		b.WriteString(" user=")
		b.WriteString(strconv.Quote(r.User))
	}
	if r.ID != "" {
		b.WriteString(" id=")
		b.WriteString(strconv.Quote(r.ID))
	}
	if r.Pass != "" {
		b.WriteString(" pass=<redacted>")
	}
	if len(r.Data) > 0 {
		b.WriteString(" data=<")
		b.WriteString(strconv.Itoa(len(r.Data)))
		b.WriteString(" bytes>")
	}
	return b.String()
}

// LogValue describes the request for log/slog as String does, so that a
// structured log never holds its Pass.
func (r Request) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Response is what a daemon answers: a result code, its message, data and
// meta information.
type Response struct {
	// Code is the EPP result code (CodeOK, ...). The server sends a zero
	// Code as CodeOK.
	Code int `json:"code"`
	// Message is a human-readable text for Code; the server fills in
	// Message(Code) when it is empty.
	Message string `json:"message"`
	// Data is the command's result, as JSON text whatever the codec.
	Data json.RawMessage `json:"data,omitempty"`
	// Meta is filled in by the server.
	Meta Meta `json:"meta"`
}

// Meta is what the server adds to every response, as the Perl framework's
// Format did.
type Meta struct {
	// Transaction is the request's ID, or an id the server generated when
	// the request had none.
	Transaction string
	// Duration is how long the server took, from having read the request
	// to having its response. On the wire it is "duration", a number of
	// seconds with microsecond resolution, as the Perl framework's delta
	// seconds were.
	Duration time.Duration
	// User is the request's User, if it had one.
	User string
}

// MarshalJSON encodes m as {"transaction":..., "duration":SECONDS, "user":...}.
func (m Meta) MarshalJSON() ([]byte, error) {
	return appendMeta(make([]byte, 0, 64), &m), nil
}

// UnmarshalJSON decodes what MarshalJSON produces.
func (m *Meta) UnmarshalJSON(b []byte) error {
	var aux struct {
		Transaction string  `json:"transaction"`
		Duration    float64 `json:"duration"`
		User        string  `json:"user"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	m.Transaction, m.User = aux.Transaction, aux.User
	m.Duration = secondsToDuration(aux.Duration)
	return nil
}

// secondsToDuration converts seconds to a Duration, saturating instead of
// overflowing.
func secondsToDuration(s float64) time.Duration {
	ns := s * 1e9
	switch {
	case ns != ns: // NaN
		return 0
	case ns >= 1<<63-1:
		return 1<<63 - 1
	case ns <= -1<<63:
		return -1 << 63
	}
	return time.Duration(ns + copysignHalf(ns))
}

func copysignHalf(x float64) float64 {
	if x < 0 {
		return -0.5
	}
	return 0.5
}

// Reply returns a response with code, its message and v encoded as JSON as
// Data (nil v: no Data; a json.RawMessage v is used as is). If v
// cannot be encoded, Reply returns a CodeCommandFailed response saying so.
func Reply(code int, v any) *Response {
	data, err := marshalData(v)
	if err != nil {
		return Fail(Errorf(CodeCommandFailed, "encode response data: %v", err))
	}
	return &Response{Code: code, Message: Message(code), Data: data}
}

// OK returns a CodeOK response with v as Data (see Reply).
func OK(v any) *Response { return Reply(CodeOK, v) }

// Failf returns a response with code and a message that is the code's own
// message followed by the formatted detail.
func Failf(code int, format string, args ...any) *Response {
	return Fail(Errorf(code, format, args...))
}

// Fail returns the response that reports err: the first *Error in err's
// chain gives its code and message; any other error gives
// CodeCommandFailed with err's text as detail. A nil err gives a CodeOK
// response.
func Fail(err error) *Response {
	if err == nil {
		return &Response{Code: CodeOK, Message: Message(CodeOK)}
	}
	if e, ok := errors.AsType[*Error](err); ok {
		msg := e.Message
		if msg == "" {
			msg = Message(e.Code)
		}
		return &Response{Code: e.Code, Message: msg}
	}
	return &Response{Code: CodeCommandFailed, Message: Message(CodeCommandFailed) + ": " + err.Error()}
}

// Err returns nil for a success code (1000–1999) and otherwise an *Error
// with the response's code and message: for every code from 2000 up, and
// for a code outside the EPP ranges, which no conforming server sends.
func (r *Response) Err() error {
	if IsSuccess(r.Code) {
		return nil
	}
	return &Error{Code: r.Code, Message: r.Message}
}

// DecodeData decodes the response's Data into v. Empty Data leaves v as is.
func (r *Response) DecodeData(v any) error {
	if len(r.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return wrap(err, "decode response data")
	}
	return nil
}

// errInvalidData is the error for a json.RawMessage that is not JSON.
var errInvalidData = errors.New("data is not valid JSON")

// marshalData encodes v as a Data field.
func marshalData(v any) (json.RawMessage, error) {
	switch d := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if d != nil && !validJSON(d) {
			return nil, errInvalidData
		}
		return d, nil
	}
	return json.Marshal(v)
}
