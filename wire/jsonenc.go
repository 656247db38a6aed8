package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// The json codec's hand-written encoders for the envelope. They produce what
// encoding/json would (without HTML escaping) for the struct tags in
// message.go; the tests check that they agree.

// appendRequest appends r as a JSON object.
func appendRequest(dst []byte, r *Request) ([]byte, error) {
	dst = append(dst, `{"command":`...)
	dst = appendString(dst, r.Command)
	if r.User != "" {
		dst = append(dst, `,"user":`...)
		dst = appendString(dst, r.User)
	}
	if r.Pass != "" {
		dst = append(dst, `,"pass":`...)
		dst = appendString(dst, r.Pass)
	}
	if r.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, r.ID)
	}
	var err error
	if dst, err = appendData(dst, r.Data); err != nil {
		return dst, err
	}
	if len(r.Options) > 0 {
		dst = append(dst, `,"options":`...)
		if dst, err = appendJSON(dst, r.Options); err != nil {
			return dst, fmt.Errorf("options: %w", err)
		}
	}
	return append(dst, '}'), nil
}

// appendResponse appends r as a JSON object.
func appendResponse(dst []byte, r *Response) ([]byte, error) {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(r.Code), 10)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, r.Message)
	var err error
	if dst, err = appendData(dst, r.Data); err != nil {
		return dst, err
	}
	dst = append(dst, `,"meta":`...)
	dst = appendMeta(dst, &r.Meta)
	return append(dst, '}'), nil
}

// appendData appends `,"data":` and data, if there is any; data must be
// valid JSON.
func appendData(dst []byte, data json.RawMessage) ([]byte, error) {
	if len(data) == 0 {
		return dst, nil
	}
	if !validJSON(data) {
		return dst, errInvalidData
	}
	dst = append(dst, `,"data":`...)
	return append(dst, data...), nil
}

// appendMeta appends m as a JSON object.
func appendMeta(dst []byte, m *Meta) []byte {
	dst = append(dst, `{"transaction":`...)
	dst = appendString(dst, m.Transaction)
	dst = append(dst, `,"duration":`...)
	dst = appendSeconds(dst, m.Duration)
	if m.User != "" {
		dst = append(dst, `,"user":`...)
		dst = appendString(dst, m.User)
	}
	return append(dst, '}')
}

// appendSeconds appends d as a decimal number of seconds, rounded to the
// microsecond, without trailing zeros ("0.000123", "2", "-1.5").
func appendSeconds(dst []byte, d time.Duration) []byte {
	us := int64(d.Round(time.Microsecond) / time.Microsecond)
	u := uint64(us)
	if us < 0 {
		dst = append(dst, '-')
		u = uint64(-us) // also right for the most negative value
	}
	dst = strconv.AppendUint(dst, u/1e6, 10)
	frac := u % 1e6
	if frac == 0 {
		return dst
	}
	var digits [7]byte
	digits[0] = '.'
	for i := 6; i >= 1; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 7
	for digits[n-1] == '0' {
		n--
	}
	return append(dst, digits[:n]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does
// with HTML escaping off: invalid UTF-8 becomes U+FFFD, and U+2028 and
// U+2029 are escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
