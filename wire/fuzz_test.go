package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzReadFrame reads frames from arbitrary bytes: it must never return a
// frame over the limit, must fail only with EOF, a truncation or a refusal,
// and what it read must be exactly what WriteFrame writes for those frames.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x03abc"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x01x"))
	f.Add([]byte("\xff\xff\xff\xff"))
	f.Add([]byte("\x00\x00\x04\x01"))
	f.Add([]byte("\x00\x00\x00\x05ab"))
	f.Add([]byte("\x00\x00"))
	const limit = 1 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var rewritten bytes.Buffer
		var buf []byte
		for {
			frame, err := ReadFrame(r, buf, limit)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				if errors.Is(err, io.EOF) && r.Len() != 0 {
					t.Fatalf("EOF with %d bytes left", r.Len())
				}
				break
			}
			if len(frame) > limit {
				t.Fatalf("frame of %d bytes over the limit", len(frame))
			}
			if err := WriteFrame(&rewritten, frame); err != nil {
				t.Fatal(err)
			}
			buf = frame
		}
		if !bytes.HasPrefix(data, rewritten.Bytes()) {
			t.Fatalf("rewritten frames %q are not a prefix of the input", rewritten.Bytes())
		}
	})
}

// FuzzDecodeRequest decodes arbitrary payloads as requests and responses
// with both built-in codecs, bounded: decoding must not panic, and a decoded
// request must survive a round trip through each codec unchanged.
func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		`{"command":"put","user":"ann","pass":"x","id":"1","data":{"key":"a","value":"1"},"options":{"ttl":3}}`,
		`{"command":"get"}`,
		`null`, `{}`, `[]`, `"x"`, ``,
		`{"command":"\u2028\ud800","data":null}`,
		`{"code":1000,"message":"ok","data":[1,2],"meta":{"transaction":"t","duration":0.5,"user":"u"}}`,
		`{"meta":{"duration":1e400}}`,
		`{"meta":{"duration":-9.3e18}}`,
	}
	gz := mustLookup(f, CodecJSONGzip)
	for _, s := range seeds {
		f.Add([]byte(s))
		b, err := gz.(gzipCodec).gzipRaw([]byte(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	codecs := []Codec{mustLookup(f, CodecJSON), gz}
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range codecs {
			resp := new(Response)
			if decode(c, data, resp, limit) == nil {
				if _, err := c.Encode(nil, resp); err != nil {
					t.Fatalf("%s: decoded response does not encode: %v", c.Name(), err)
				}
			}
			req := new(Request)
			if err := decode(c, data, req, limit); err != nil {
				continue
			}
			for _, c2 := range codecs {
				b, err := c2.Encode(nil, req)
				if err != nil {
					t.Fatalf("%s: decoded request %#v does not encode with %s: %v", c.Name(), req, c2.Name(), err)
				}
				again := new(Request)
				if err := decode(c2, b, again, limit); err != nil {
					t.Fatalf("%s: re-encoded request %q does not decode: %v", c2.Name(), b, err)
				}
				if !reflect.DeepEqual(compactData(t, again), compactData(t, req)) {
					t.Fatalf("%s: round trip changed\n%#v\nto\n%#v", c2.Name(), req, again)
				}
			}
		}
	})
}

// gzipRaw compresses b as the json+gzip codec does, for seeds.
func (gzipCodec) gzipRaw(b []byte) ([]byte, error) {
	w := gzipWriters.Get().(*gzipWriter)
	defer gzipWriters.Put(w)
	w.out.b = nil
	w.zw.Reset(&w.out)
	w.zw.Write(b)
	err := w.zw.Close()
	return w.out.b, err
}

// FuzzFastDecode checks the json codec's fast decoders against
// encoding/json: where the fast path accepts a message, encoding/json must
// accept it too and decode the same values; and validJSON must agree with
// json.Valid everywhere.
func FuzzFastDecode(f *testing.F) {
	for _, s := range []string{
		`{"command":"put","user":"ann","pass":"x","id":"1","data":{"key":"a","value":"1"},"options":{"ttl":3}}`,
		`{"code":1000,"message":"ok","data":[1,2.5e3,"\u00e9",true,null],"meta":{"transaction":"t","duration":0.5,"user":"u"}}`,
		`{"Command":"x"}`, `{"command":"a","command":"b"}`, `{"meta":{"user":"a"},"meta":{"duration":1}}`,
		`{"code":-0}`, `{"code":1.0}`, `{"code":99999999999999999999}`, `{"x":[{"y":{}}],"command":"é"}`,
		` {"command" : "x" } `, `{"command":"x",}`, `{"data":01}`, `{"data":"\ud800"}`, `{"ſ":1,"paſſ":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON = %v, json.Valid = %v", got, want)
		}
		var fastReq, slowReq Request
		d := fastDecoder{data: data}
		if d.request(&fastReq) {
			if err := json.Unmarshal(data, &slowReq); err != nil {
				t.Fatalf("fast path accepted a request encoding/json rejects: %v", err)
			}
			if !reflect.DeepEqual(fastReq, slowReq) {
				t.Fatalf("request differs:\nfast %#v\nslow %#v", fastReq, slowReq)
			}
		}
		var fastResp, slowResp Response
		d = fastDecoder{data: data}
		if d.response(&fastResp) {
			if err := json.Unmarshal(data, &slowResp); err != nil {
				t.Fatalf("fast path accepted a response encoding/json rejects: %v", err)
			}
			if !reflect.DeepEqual(fastResp, slowResp) {
				t.Fatalf("response differs:\nfast %#v\nslow %#v", fastResp, slowResp)
			}
		}
	})
}
