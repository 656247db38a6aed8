package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Names of the built-in codecs.
const (
	CodecJSON     = "json"      // JSON text; the default
	CodecJSONGzip = "json+gzip" // JSON text compressed with gzip
)

// DefaultCodec is the codec used when none is named.
const DefaultCodec = CodecJSON

// ErrUnknownCodec is returned (wrapped) by Lookup for a name nothing
// registered.
var ErrUnknownCodec = errors.New("wire: unknown codec")

// ErrDecodedTooLarge is returned (wrapped) by a decoder whose input expands
// (json+gzip) when the expanded message exceeds the size limit.
var ErrDecodedTooLarge = errors.New("wire: decoded message too large")

// Codec turns messages into frame payloads and back: the Perl framework's
// encode and decode. A daemon's codec name is stored in the registry, so its
// clients use the same one. Codecs must be safe for concurrent use.
type Codec interface {
	// Name is the name the codec is registered and looked up by, such as
	// "json".
	Name() string
	// Encode appends the encoding of v (a *Request, a *Response, or any
	// other value the codec supports) to dst and returns the extended
	// slice, as the strconv.Append functions do.
	Encode(dst []byte, v any) ([]byte, error)
	// Decode decodes data into v, a pointer. It must not keep data, which
	// the caller reuses.
	Decode(data []byte, v any) error
}

// BoundedDecoder is implemented by codecs whose decoded form can be much
// larger than their input, such as compressing ones. The server and Conn
// call DecodeBounded with their frame limit instead of Decode, so a small
// frame cannot expand without limit (a zip bomb).
type BoundedDecoder interface {
	// DecodeBounded is Decode, failing with an error wrapping
	// ErrDecodedTooLarge if the data expands beyond max bytes.
	DecodeBounded(data []byte, v any, max int) error
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Codec{}
)

func init() {
	Register(jsonCodec{})
	Register(gzipCodec{})
}

// Register makes c available by c.Name(). It panics if the name is empty or
// already registered, as database/sql.Register does: codecs are registered
// from init functions, and a clash is a programming error.
func Register(c Codec) {
	if c == nil {
		panic("wire: Register of a nil Codec")
	}
	name := c.Name()
	if name == "" {
		panic("wire: Register of a Codec with an empty name")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("wire: Register called twice for codec " + name)
	}
	registry[name] = c
}

// Lookup returns the codec registered as name; the empty name means
// DefaultCodec. An unknown name gives an error wrapping ErrUnknownCodec.
func Lookup(name string) (Codec, error) {
	if name == "" {
		name = DefaultCodec
	}
	registryMu.RLock()
	c, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCodec, name)
	}
	return c, nil
}

// Codecs returns the names of the registered codecs, sorted.
func Codecs() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// decode decodes data into v with c, bounded by max if c supports it.
func decode(c Codec, data []byte, v any, max int) error {
	if b, ok := c.(BoundedDecoder); ok {
		return b.DecodeBounded(data, v, max)
	}
	return c.Decode(data, v)
}

// jsonCodec is the "json" codec. *Request and *Response are encoded by
// hand, which is several times faster than reflection; everything else by
// encoding/json, without HTML escaping.
type jsonCodec struct{}

var _ Codec = jsonCodec{}

func (jsonCodec) Name() string { return CodecJSON }

func (jsonCodec) Encode(dst []byte, v any) ([]byte, error) {
	switch m := v.(type) {
	case *Request:
		return appendRequest(dst, m)
	case *Response:
		return appendResponse(dst, m)
	}
	return appendJSON(dst, v)
}

func (jsonCodec) Decode(data []byte, v any) error {
	switch m := v.(type) {
	case *Request:
		return decodeRequest(data, m)
	case *Response:
		return decodeResponse(data, m)
	}
	return json.Unmarshal(data, v)
}

// maxPooled is the largest buffer put back into a pool; bigger ones, from
// rare big messages, are left to the garbage collector.
const maxPooled = 64 << 10

// jsonEncoder is a pooled encoding/json encoder writing into its own buffer.
type jsonEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonEncoders = sync.Pool{New: func() any {
	e := new(jsonEncoder)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// appendJSON appends v encoded by encoding/json to dst.
func appendJSON(dst []byte, v any) ([]byte, error) {
	e := jsonEncoders.Get().(*jsonEncoder)
	e.buf.Reset()
	err := e.enc.Encode(v)
	if err == nil {
		b := e.buf.Bytes()
		dst = append(dst, b[:len(b)-1]...) // without Encode's newline
	}
	if e.buf.Cap() <= maxPooled {
		jsonEncoders.Put(e)
	}
	return dst, err
}

// gzipCodec is the "json+gzip" codec: the json codec's output compressed
// with gzip at BestSpeed.
type gzipCodec struct{}

var (
	_ Codec          = gzipCodec{}
	_ BoundedDecoder = gzipCodec{}
)

func (gzipCodec) Name() string { return CodecJSONGzip }

// gzipWriter is a pooled gzip writer with the buffers it needs.
type gzipWriter struct {
	zw   *gzip.Writer
	out  appendWriter
	json []byte
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var gzipWriters = sync.Pool{New: func() any {
	w := new(gzipWriter)
	w.zw, _ = gzip.NewWriterLevel(&w.out, gzip.BestSpeed) // the level is valid
	return w
}}

func (gzipCodec) Encode(dst []byte, v any) ([]byte, error) {
	w := gzipWriters.Get().(*gzipWriter)
	defer func() {
		w.out.b = nil
		if cap(w.json) <= maxPooled {
			gzipWriters.Put(w)
		}
	}()
	var err error
	w.json, err = jsonCodec{}.Encode(w.json[:0], v)
	if err != nil {
		return dst, err
	}
	w.out.b = dst
	w.zw.Reset(&w.out)
	if _, err := w.zw.Write(w.json); err != nil {
		return dst, fmt.Errorf("compress: %w", err)
	}
	if err := w.zw.Close(); err != nil {
		return dst, fmt.Errorf("compress: %w", err)
	}
	return w.out.b, nil
}

// gzipReader is a pooled gzip reader with the buffers it needs.
type gzipReader struct {
	zr  gzip.Reader
	src bytes.Reader
	buf []byte
}

var gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}

// Decode is DecodeBounded with DefaultMaxFrame as the limit.
func (c gzipCodec) Decode(data []byte, v any) error {
	return c.DecodeBounded(data, v, DefaultMaxFrame)
}

func (gzipCodec) DecodeBounded(data []byte, v any, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	r := gzipReaders.Get().(*gzipReader)
	defer func() {
		r.src.Reset(nil)
		if cap(r.buf) <= maxPooled {
			gzipReaders.Put(r)
		}
	}()
	r.src.Reset(data)
	if err := r.zr.Reset(&r.src); err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	var err error
	r.buf, err = readAtMost(r.buf[:0], &r.zr, limit)
	if err != nil {
		return err
	}
	return jsonCodec{}.Decode(r.buf, v)
}

// readAtMost appends what r yields until EOF to buf, failing with
// ErrDecodedTooLarge once that is more than limit bytes. It grows buf as the
// data arrives, never to more than limit+1 bytes.
func readAtMost(buf []byte, r io.Reader, limit int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, fmt.Errorf("%w: over %d bytes", ErrDecodedTooLarge, limit)
			}
			grow := max(512, cap(buf))
			grow = min(grow, limit+1-len(buf))
			buf = slices.Grow(buf, grow)
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, fmt.Errorf("%w: over %d bytes", ErrDecodedTooLarge, limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("decompress: %w", err)
		}
	}
}
