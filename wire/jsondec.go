package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The json codec's fast decoders for the envelope. They handle the common
// case, an object with the envelope's keys whose strings have no escapes,
// and give up on anything else (escapes, nulls, keys that differ from the
// envelope's only in case, deep nesting, invalid JSON), leaving the message
// to encoding/json. So they never decide what is an error, and where they
// succeed they agree with encoding/json; the fuzz tests check that.

// maxFastDepth is the nesting the fast scanner follows before giving up.
const maxFastDepth = 256

// sharedStringMax is the largest message whose string fields the fast
// decoders cut from one copy of the whole message, one allocation instead
// of one per field; larger messages get a copy per field, so that a short
// field does not keep a large message alive.
const sharedStringMax = 2048

// fastDecoder reads one JSON text.
type fastDecoder struct {
	data []byte
	i    int
	src  string // data as a string, if it is small enough to share
}

// newFastDecoder returns a decoder for data.
func newFastDecoder(data []byte) fastDecoder {
	d := fastDecoder{data: data}
	if len(data) <= sharedStringMax {
		d.src = string(data)
	}
	return d
}

// validJSON reports whether b is one valid JSON value, as json.Valid does,
// with the fast scanner first.
func validJSON(b []byte) bool {
	d := fastDecoder{data: b}
	if _, ok := d.value(); ok && d.end() {
		return true
	}
	return json.Valid(b)
}

// decodeRequest decodes data into a zeroed r.
func decodeRequest(data []byte, r *Request) error {
	*r = Request{}
	d := newFastDecoder(data)
	if d.request(r) {
		return nil
	}
	*r = Request{}
	return json.Unmarshal(data, r)
}

// decodeResponse decodes data into a zeroed r.
func decodeResponse(data []byte, r *Response) error {
	*r = Response{}
	d := newFastDecoder(data)
	if d.response(r) {
		return nil
	}
	*r = Response{}
	return json.Unmarshal(data, r)
}

var (
	requestKeys  = []string{"command", "user", "pass", "id", "data", "options"}
	responseKeys = []string{"code", "message", "data", "meta"}
	metaKeys     = []string{"transaction", "duration", "user"}
)

func (d *fastDecoder) request(r *Request) bool {
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "command":
			return d.str(&r.Command)
		case "user":
			return d.str(&r.User)
		case "pass":
			return d.str(&r.Pass)
		case "id":
			return d.str(&r.ID)
		case "data":
			return d.raw(&r.Data)
		case "options":
			v, ok := d.value()
			return ok && json.Unmarshal(v, &r.Options) == nil
		}
		return d.other(key, requestKeys)
	})
	return ok && d.end()
}

func (d *fastDecoder) response(r *Response) bool {
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "code":
			return d.int(&r.Code)
		case "message":
			return d.str(&r.Message)
		case "data":
			return d.raw(&r.Data)
		case "meta":
			return d.meta(&r.Meta)
		}
		return d.other(key, responseKeys)
	})
	return ok && d.end()
}

// meta decodes a Meta object as Meta.UnmarshalJSON does: fields it lacks
// are zero.
func (d *fastDecoder) meta(m *Meta) bool {
	*m = Meta{}
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "transaction":
			return d.str(&m.Transaction)
		case "user":
			return d.str(&m.User)
		case "duration":
			v, ok := d.number()
			if !ok {
				return false
			}
			s, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return false
			}
			m.Duration = secondsToDuration(s)
			return true
		}
		return d.other(key, metaKeys)
	})
}

// other skips the value of an unknown key, unless encoding/json would match
// the key to a field case-insensitively.
func (d *fastDecoder) other(key []byte, known []string) bool {
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return false
		}
	}
	_, ok := d.value()
	return ok
}

func (d *fastDecoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end reports whether only whitespace is left.
func (d *fastDecoder) end() bool {
	d.ws()
	return d.i == len(d.data)
}

func (d *fastDecoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

// object reads an object, calling field with the decoder at each key's
// value; field reads the value.
func (d *fastDecoder) object(field func(key []byte) bool) bool {
	d.ws()
	if d.peek() != '{' {
		return false
	}
	d.i++
	d.ws()
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		d.ws()
		key, ok := d.plainString()
		if !ok {
			return false
		}
		d.ws()
		if d.peek() != ':' {
			return false
		}
		d.i++
		d.ws()
		if !field(key) {
			return false
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// strClass classifies bytes inside a JSON string: 0 ends the plain run (a
// quote, a backslash or a control character), 1 is other ASCII, 2 a byte of
// a multi-byte UTF-8 sequence.
var strClass = func() (t [256]byte) {
	for c := range t {
		switch {
		case c < 0x20 || c == '"' || c == '\\':
		case c < utf8.RuneSelf:
			t[c] = 1
		default:
			t[c] = 2
		}
	}
	return t
}()

// plainString reads a string without escapes or control characters, in
// valid UTF-8, and returns its contents.
func (d *fastDecoder) plainString() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	data := d.data
	start := d.i + 1
	i, class := start, byte(0)
	for ; i < len(data); i++ {
		c := strClass[data[i]]
		if c == 0 {
			break
		}
		class |= c
	}
	if i == len(data) || data[i] != '"' {
		return nil, false
	}
	s := data[start:i]
	if class&2 != 0 && !utf8.Valid(s) {
		return nil, false
	}
	d.i = i + 1
	return s, true
}

func (d *fastDecoder) str(dst *string) bool {
	s, ok := d.plainString()
	switch {
	case !ok:
	case d.src != "":
		end := d.i - 1 // the closing quote
		*dst = d.src[end-len(s) : end]
	default:
		*dst = string(s)
	}
	return ok
}

// raw reads any value into dst, as a copy.
func (d *fastDecoder) raw(dst *json.RawMessage) bool {
	v, ok := d.value()
	if ok {
		*dst = append(json.RawMessage(nil), v...)
	}
	return ok
}

// int reads an integer without fraction or exponent.
func (d *fastDecoder) int(dst *int) bool {
	v, ok := d.number()
	if !ok || bytes.IndexByte(v, '.') >= 0 || bytes.IndexByte(v, 'e') >= 0 || bytes.IndexByte(v, 'E') >= 0 {
		return false
	}
	n, err := strconv.ParseInt(string(v), 10, strconv.IntSize)
	if err != nil {
		return false
	}
	*dst = int(n)
	return true
}

// value reads and validates any JSON value and returns its text.
func (d *fastDecoder) value() ([]byte, bool) {
	d.ws()
	start := d.i
	if !d.skip(0) {
		return nil, false
	}
	return d.data[start:d.i], true
}

func (d *fastDecoder) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch c := d.peek(); {
	case c == '{':
		d.i++
		d.ws()
		if d.peek() == '}' {
			d.i++
			return true
		}
		for {
			d.ws()
			if !d.skipString() {
				return false
			}
			d.ws()
			if d.peek() != ':' {
				return false
			}
			d.i++
			d.ws()
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		d.i++
		d.ws()
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			d.ws()
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		return d.skipString()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		_, ok := d.number()
		return ok
	}
	return false
}

func (d *fastDecoder) literal(lit string) bool {
	if !bytes.HasPrefix(d.data[d.i:], []byte(lit)) {
		return false
	}
	d.i += len(lit)
	return true
}

// skipString validates a string, escapes included.
func (d *fastDecoder) skipString() bool {
	if d.peek() != '"' {
		return false
	}
	for i := d.i + 1; i < len(d.data); i++ {
		for i < len(d.data) && strClass[d.data[i]] != 0 {
			i++
		}
		if i == len(d.data) {
			return false
		}
		switch d.data[i] {
		case '"':
			d.i = i + 1
			return true
		case '\\':
			i++
			if i >= len(d.data) {
				return false
			}
			switch d.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(d.data) {
					return false
				}
				for _, h := range d.data[i+1 : i+5] {
					if !isHex(h) {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads a number in JSON's grammar and returns its text.
func (d *fastDecoder) number() ([]byte, bool) {
	start := d.i
	if d.peek() == '-' {
		d.i++
	}
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		for isDigit(d.peek()) {
			d.i++
		}
	default:
		return nil, false
	}
	if d.peek() == '.' {
		d.i++
		if !isDigit(d.peek()) {
			return nil, false
		}
		for isDigit(d.peek()) {
			d.i++
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if !isDigit(d.peek()) {
			return nil, false
		}
		for isDigit(d.peek()) {
			d.i++
		}
	}
	return d.data[start:d.i], true
}
