package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustLookup(tb testing.TB, name string) Codec {
	tb.Helper()
	c, err := Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"", "json", "json+gzip"} {
		c := mustLookup(t, name)
		want := name
		if want == "" {
			want = DefaultCodec
		}
		if c.Name() != want {
			t.Errorf("Lookup(%q).Name() = %q", name, c.Name())
		}
	}
	if _, err := Lookup("yaml"); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("Lookup(yaml) = %v, want ErrUnknownCodec", err)
	}
	if got := Codecs(); !reflect.DeepEqual(got, []string{"json", "json+gzip"}) {
		t.Errorf("Codecs() = %q", got)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering json twice did not panic")
		}
	}()
	Register(jsonCodec{})
}

var roundTripRequests = []*Request{
	{Command: "get"},
	{Command: "put", User: "ann", Pass: "secret", ID: "42", Data: json.RawMessage(`{"key":"a","value":"1"}`),
		Options: map[string]any{"ttl": 3.0, "tags": []any{"x", "y"}, "nested": map[string]any{"a": true}}},
	{Command: "weird \"quotes\" \\ and \n\t\r\b\f\x00\x1f controls", User: "ünïcödé ☃ 𝄞", ID: "\u2028\u2029",
		Data: json.RawMessage(`"<html>&amp;"`)},
	{Command: "<script>&", Data: json.RawMessage(`null`)},
	{Command: "ws", Data: json.RawMessage(" [1, 2,\n 3] ")},
}

var roundTripResponses = []*Response{
	{Code: 1000, Message: "Command completed successfully"},
	{Code: 2303, Message: "Object does not exist: key \"a\"", Data: json.RawMessage(`{"key":"a"}`),
		Meta: Meta{Transaction: "t-1", Duration: 1500 * time.Microsecond, User: "ann"}},
	{Code: 1001, Message: "pending", Data: json.RawMessage(`"spool-id@node"`),
		Meta: Meta{Transaction: "\x00\xff", Duration: 3 * time.Second}},
	{Code: -5, Meta: Meta{Duration: -2500 * time.Millisecond}},
}

// normalised is what a message is after one trip through JSON: invalid
// UTF-8 replaced, Data compacted.
func normalised(tb testing.TB, v any) any {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		tb.Fatal(err)
	}
	out := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		tb.Fatal(err)
	}
	return compactData(tb, out)
}

// compactData compacts the Data of a *Request or *Response in place, and
// makes an empty Options nil.
func compactData(tb testing.TB, v any) any {
	tb.Helper()
	var data *json.RawMessage
	switch m := v.(type) {
	case *Request:
		if len(m.Options) == 0 {
			m.Options = nil // omitted when empty
		}
		data = &m.Data
	case *Response:
		data = &m.Data
	default:
		return v
	}
	if len(*data) == 0 {
		return v
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, *data); err != nil {
		tb.Fatal(err)
	}
	*data = buf.Bytes()
	return v
}

func TestCodecRoundTrip(t *testing.T) {
	for _, name := range []string{"json", "json+gzip"} {
		c := mustLookup(t, name)
		t.Run(name, func(t *testing.T) {
			for i, req := range roundTripRequests {
				b, err := c.Encode(nil, req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				got := new(Request)
				if err := c.Decode(b, got); err != nil {
					t.Fatalf("request %d: decode %q: %v", i, b, err)
				}
				if want := normalised(t, req); !reflect.DeepEqual(compactData(t, got), want) {
					t.Errorf("request %d:\n got %#v\nwant %#v", i, got, want)
				}
			}
			for i, resp := range roundTripResponses {
				b, err := c.Encode([]byte("prefix"), resp)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				if !bytes.HasPrefix(b, []byte("prefix")) {
					t.Fatalf("response %d: Encode did not append: %q", i, b)
				}
				got := new(Response)
				if err := c.Decode(b[len("prefix"):], got); err != nil {
					t.Fatalf("response %d: decode: %v", i, err)
				}
				if want := normalised(t, resp); !reflect.DeepEqual(compactData(t, got), want) {
					t.Errorf("response %d:\n got %#v\nwant %#v", i, got, want)
				}
			}
			// Any other value goes through encoding/json.
			in := map[string]any{"a": []any{1.0, "b"}}
			b, err := c.Encode(nil, in)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			if err := c.Decode(b, &out); err != nil || !reflect.DeepEqual(in, out) {
				t.Errorf("map round trip: %v, %v", out, err)
			}
		})
	}
}

// TestJSONMatchesEncodingJSON checks the hand-written encoders against
// encoding/json without HTML escaping.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	std := func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(buf.String(), "\n")
	}
	compact := func(b []byte) string {
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		return buf.String()
	}
	for i, req := range roundTripRequests {
		b, err := jsonCodec{}.Encode(nil, req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := compact(b), std(req); got != want {
			t.Errorf("request %d:\n got %s\nwant %s", i, got, want)
		}
	}
	for i, resp := range roundTripResponses {
		b, err := jsonCodec{}.Encode(nil, resp)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := compact(b), std(resp); got != want {
			t.Errorf("response %d:\n got %s\nwant %s", i, got, want)
		}
	}
	for _, s := range []string{"", "plain", "\"\\/", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é☃𝄞", "\xff\xfe bad", "a\u2028b\u2029c", "<>&"} {
		if got, want := string(appendString(nil, s)), std(s); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestEncodeRejectsInvalidData(t *testing.T) {
	for _, name := range []string{"json", "json+gzip"} {
		c := mustLookup(t, name)
		if _, err := c.Encode(nil, &Response{Code: 1000, Data: json.RawMessage(`{bad`)}); err == nil {
			t.Errorf("%s: encoded a response with invalid data", name)
		}
		if _, err := c.Encode(nil, &Request{Command: "x", Data: json.RawMessage(`1 2`)}); err == nil {
			t.Errorf("%s: encoded a request with invalid data", name)
		}
	}
}

func TestPassNeverInResponse(t *testing.T) {
	req := &Request{Command: "login", User: "ann", Pass: "hunter22"}
	if s := req.String(); strings.Contains(s, "hunter22") {
		t.Errorf("String() leaks the pass: %s", s)
	}
	if s := fmtV(req); strings.Contains(s, "hunter22") {
		t.Errorf("%%v leaks the pass: %s", s)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("call", "req", req)
	if strings.Contains(logged.String(), "hunter22") || !strings.Contains(logged.String(), "login") {
		t.Errorf("slog: %s", logged.String())
	}
	if _, ok := reflect.TypeOf(Response{}).FieldByName("Pass"); ok {
		t.Error("Response has a Pass field")
	}
}

func TestMetaDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		json string
	}{
		{0, `0`},
		{time.Microsecond, `0.000001`},
		{1500 * time.Microsecond, `0.0015`},
		{123456789 * time.Nanosecond, `0.123457`},
		{2 * time.Second, `2`},
		{-1500 * time.Millisecond, `-1.5`},
	}
	for _, tt := range tests {
		got := string(appendSeconds(nil, tt.d))
		if got != tt.json {
			t.Errorf("appendSeconds(%v) = %s, want %s", tt.d, got, tt.json)
		}
		var m Meta
		if err := json.Unmarshal([]byte(`{"duration":`+got+`}`), &m); err != nil {
			t.Fatal(err)
		}
		if want := tt.d.Round(time.Microsecond); m.Duration != want {
			t.Errorf("decode %s = %v, want %v", got, m.Duration, want)
		}
	}
	var m Meta
	if err := json.Unmarshal([]byte(`{"duration":1e300}`), &m); err != nil || m.Duration != 1<<63-1 {
		t.Errorf("huge duration = %v, %v", m.Duration, err)
	}
	if _, err := m.MarshalJSON(); err != nil {
		t.Error(err)
	}
}

func TestGzipBombBounded(t *testing.T) {
	// 20 MiB of zeros compress to about 100 KiB.
	var comp bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&comp, gzip.BestSpeed)
	zw.Write([]byte(`{"command":"`))
	zero := make([]byte, 1<<20)
	for range 20 {
		zw.Write(zero)
	}
	zw.Close()
	t.Logf("bomb: %d bytes compressed", comp.Len())

	c := mustLookup(t, CodecJSONGzip).(BoundedDecoder)
	err := c.DecodeBounded(comp.Bytes(), new(Request), 1<<20)
	if !errors.Is(err, ErrDecodedTooLarge) {
		t.Fatalf("DecodeBounded = %v, want ErrDecodedTooLarge", err)
	}
	// Through the codec's plain Decode, the default frame limit applies.
	if err := mustLookup(t, CodecJSONGzip).Decode(comp.Bytes(), new(Request)); !errors.Is(err, ErrDecodedTooLarge) {
		t.Fatalf("Decode = %v, want ErrDecodedTooLarge", err)
	}
	// Exactly at the limit is fine.
	msg := []byte(`{"command":"x"}`)
	comp.Reset()
	zw.Reset(&comp)
	zw.Write(msg)
	zw.Close()
	if err := c.DecodeBounded(comp.Bytes(), new(Request), len(msg)); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if err := c.DecodeBounded(comp.Bytes(), new(Request), len(msg)-1); !errors.Is(err, ErrDecodedTooLarge) {
		t.Errorf("one over the limit: %v", err)
	}
}

func TestGzipDecodeGarbage(t *testing.T) {
	c := mustLookup(t, CodecJSONGzip)
	for _, in := range [][]byte{nil, []byte("x"), []byte("\x1f\x8b\x08\x00garbage"), []byte(`{"command":"x"}`)} {
		if err := c.Decode(in, new(Request)); err == nil {
			t.Errorf("decoded %q", in)
		}
	}
}

func TestNewRequestAndReply(t *testing.T) {
	req, err := NewRequest("put", map[string]string{"key": "a"})
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]string
	if err := req.DecodeData(&d); err != nil || d["key"] != "a" {
		t.Errorf("DecodeData = %v, %v", d, err)
	}
	if _, err := NewRequest("x", json.RawMessage(`{`)); err == nil {
		t.Error("NewRequest took invalid raw JSON")
	}
	if _, err := NewRequest("x", func() {}); err == nil {
		t.Error("NewRequest took a func")
	}
	r := Reply(CodePending, "job@node")
	if r.Code != 1001 || string(r.Data) != `"job@node"` || r.Message != Message(1001) {
		t.Errorf("Reply = %+v", r)
	}
	if r := OK(func() {}); r.Code != CodeCommandFailed {
		t.Errorf("OK(func) = %+v", r)
	}
	if r := OK(nil); r.Data != nil || r.Code != CodeOK {
		t.Errorf("OK(nil) = %+v", r)
	}
	var s string
	if err := (&Response{Data: json.RawMessage(`1`)}).DecodeData(&s); err == nil {
		t.Error("DecodeData of a number into a string succeeded")
	}
}

func fmtV(v any) string { return fmt.Sprintf("%v %+v", v, v) }
