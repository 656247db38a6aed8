package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		limit  int
		frames []string
		err    error
	}{
		{"empty stream", "", 0, nil, io.EOF},
		{"one", "\x00\x00\x00\x03abc", 0, []string{"abc"}, io.EOF},
		{"empty payload", "\x00\x00\x00\x00", 0, []string{""}, io.EOF},
		{"several", "\x00\x00\x00\x01a\x00\x00\x00\x02bc\x00\x00\x00\x00", 0, []string{"a", "bc", ""}, io.EOF},
		{"short header", "\x00\x00", 0, nil, io.ErrUnexpectedEOF},
		{"short payload", "\x00\x00\x00\x05ab", 0, nil, io.ErrUnexpectedEOF},
		{"second truncated", "\x00\x00\x00\x01a\x00\x00\x00\x09b", 0, []string{"a"}, io.ErrUnexpectedEOF},
		{"at limit", "\x00\x00\x00\x03abc", 3, []string{"abc"}, io.EOF},
		{"over limit", "\x00\x00\x00\x04abcd", 3, nil, ErrFrameTooLarge},
		{"4 GiB", "\xff\xff\xff\xff", 0, nil, ErrFrameTooLarge},
		{"just over default", "\x01\x00\x00\x01", 0, nil, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{
				{"whole", func(r io.Reader) io.Reader { return r }},
				{"byte by byte", iotest.OneByteReader},
			} {
				r := wrap.r(strings.NewReader(tt.in))
				var got []string
				var buf []byte
				var err error
				for {
					var f []byte
					f, err = ReadFrame(r, buf, tt.limit)
					if err != nil {
						break
					}
					got = append(got, string(f))
					buf = f
				}
				if !errors.Is(err, tt.err) {
					t.Errorf("%s: error %v, want %v", wrap.name, err, tt.err)
				}
				if strings.Join(got, "|") != strings.Join(tt.frames, "|") || len(got) != len(tt.frames) {
					t.Errorf("%s: frames %q, want %q", wrap.name, got, tt.frames)
				}
			}
		})
	}
}

// totalAlloc returns the bytes f allocates.
func totalAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadFrameRefusesWithoutAllocating(t *testing.T) {
	buf := make([]byte, 0, 64)
	var err error
	n := totalAlloc(func() {
		_, err = ReadFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 'x'}), buf, 0)
	})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if n > 64<<10 {
		t.Errorf("refusing a 4 GiB frame allocated %d bytes", n)
	}
	// A length under the limit, with no data behind it, allocates in
	// chunks as data arrives, not the whole length up front.
	n = totalAlloc(func() {
		_, err = ReadFrame(bytes.NewReader([]byte{0x00, 0xff, 0xff, 0xff, 'x'}), buf, 0)
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
	if n > 1<<20 {
		t.Errorf("a 16 MiB length with 1 byte behind it allocated %d bytes", n)
	}
}

func TestReadFrameLarge(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+5) // over readChunk, not a multiple
	var stream bytes.Buffer
	if err := WriteFrame(&stream, payload); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&stream, []byte("next")); err != nil {
		t.Fatal(err)
	}
	r := iotest.HalfReader(&stream)
	got, err := ReadFrame(r, make([]byte, 0, 100), 0)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("large frame: %d bytes, %v", len(got), err)
	}
	got, err = ReadFrame(r, got, 0)
	if err != nil || string(got) != "next" {
		t.Fatalf("next frame: %q, %v", got, err)
	}
	// Truncated large frame.
	var short bytes.Buffer
	binary.Write(&short, binary.BigEndian, uint32(len(payload)))
	short.Write(payload[:len(payload)/2])
	if _, err := ReadFrame(&short, nil, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated large frame: %v", err)
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestWriteFrame(t *testing.T) {
	tests := []struct {
		payload string
		want    string
	}{
		{"", "\x00\x00\x00\x00"},
		{"abc", "\x00\x00\x00\x03abc"},
		{strings.Repeat("x", 258), "\x00\x00\x01\x02" + strings.Repeat("x", 258)},
	}
	for _, tt := range tests {
		var w countingWriter
		if err := WriteFrame(&w, []byte(tt.payload)); err != nil {
			t.Fatal(err)
		}
		if w.String() != tt.want {
			t.Errorf("WriteFrame(%.10q) wrote %.20q, want %.20q", tt.payload, w.String(), tt.want)
		}
		if w.writes != 1 {
			t.Errorf("WriteFrame made %d writes", w.writes)
		}
	}
}

func TestAppendFrame(t *testing.T) {
	c := mustLookup(t, CodecJSON)
	b, err := AppendFrame([]byte("x"), c, &Request{Command: "get"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "x\x00\x00\x00\x11" + `{"command":"get"}`
	if string(b) != want {
		t.Errorf("AppendFrame = %q, want %q", b, want)
	}
	b, err = AppendFrame([]byte("x"), c, &Request{Command: "get"}, 16)
	if !errors.Is(err, ErrFrameTooLarge) || string(b) != "x" {
		t.Errorf("over the limit: %q, %v", b, err)
	}
	b, err = AppendFrame([]byte("x"), c, func() {}, 0)
	if err == nil || string(b) != "x" {
		t.Errorf("unencodable: %q, %v", b, err)
	}
}
