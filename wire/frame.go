package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// DefaultMaxFrame is the largest frame payload, in bytes, that the server
// and Conn accept when no limit is set: 16 MiB.
const DefaultMaxFrame = 16 << 20

// HeaderSize is the size of a frame's length prefix.
const HeaderSize = 4

// ErrFrameTooLarge is returned (wrapped) by ReadFrame for a frame whose
// length prefix exceeds the limit, and when a frame to be written would.
var ErrFrameTooLarge = errors.New("wire: frame too large")

// readChunk is how much ReadFrame allocates ahead of data that has arrived
// for a frame larger than the buffer it was given: a length prefix alone
// does not make it allocate up to the limit.
const readChunk = 256 << 10

// ReadFrame reads one frame from r and returns its payload, in buf if it
// fits and otherwise in a new slice; the payload is valid until buf is
// reused. limit ≤ 0 means DefaultMaxFrame.
//
// A length over limit is refused with an error wrapping ErrFrameTooLarge
// before any of the payload is read or allocated: the stream cannot be
// resynchronised, and the caller should close it. A stream that ends
// cleanly before a frame gives io.EOF; one that ends inside a frame gives
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	if cap(buf) < HeaderSize {
		buf = make([]byte, HeaderSize, 512)
	}
	hdr := buf[:HeaderSize]
	if _, err := io.ReadFull(r, hdr); err != nil {
		return buf[:0], err
	}
	n := binary.BigEndian.Uint32(hdr)
	if uint64(n) > uint64(limit) {
		return buf[:0], fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	size := int(n)
	if size <= cap(buf) || size <= readChunk {
		if size > cap(buf) {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			return buf[:0], unexpected(err)
		}
		return buf, nil
	}
	// A large frame: grow with the data, not ahead of it.
	buf = buf[:0]
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(cap(buf), readChunk), size-len(buf)))
		}
		end := min(cap(buf), size)
		if _, err := io.ReadFull(r, buf[len(buf):end]); err != nil {
			return buf[:0], unexpected(err)
		}
		buf = buf[:end]
	}
	return buf, nil
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteFrame writes payload to w as one frame, header and payload in one
// Write call (a copy; AppendFrame builds a frame in place). It fails with an error wrapping ErrFrameTooLarge if payload
// is too large for a length prefix.
func WriteFrame(w io.Writer, payload []byte) error {
	if uint64(len(payload)) > math.MaxUint32 {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(payload))
	}
	frame := make([]byte, HeaderSize+len(payload))
	binary.BigEndian.PutUint32(frame, uint32(len(payload)))
	copy(frame[HeaderSize:], payload)
	_, err := w.Write(frame)
	return err
}

// AppendFrame appends a frame holding v encoded by c to dst: the 4-byte
// big-endian length, then the payload. The result can be written with one
// Write. limit ≤ 0 means DefaultMaxFrame; a payload over limit gives an error
// wrapping ErrFrameTooLarge, and dst unchanged.
func AppendFrame(dst []byte, c Codec, v any, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	out, err := c.Encode(dst, v)
	if err != nil {
		return dst[:start], wrap(err, "encode %s", c.Name())
	}
	size := len(out) - start - HeaderSize
	if uint64(size) > uint64(limit) {
		return out[:start], fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, limit)
	}
	binary.BigEndian.PutUint32(out[start:], uint32(size))
	return out, nil
}
