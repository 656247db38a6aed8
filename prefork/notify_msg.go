package prefork

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"unicode/utf8"

	proto "github.com/nsfd/nsfd/worker"
)

// Message is one parsed notify datagram. A datagram may carry several
// newline-separated KEY=VALUE words; unknown keys (systemd's MAINPID=,
// ERRNO=, ...) are accepted and ignored, as sd_notify(3) peers expect.
type Message struct {
	Ready    bool
	Stopping bool
	Watchdog bool
	// WatchdogTrigger is WATCHDOG=trigger: the worker asks to be treated as hung.
	WatchdogTrigger bool
	Busy            int    // -1: not in the message; 0: idle; 1: busy
	Status          string // STATUS= text, when HasStatus
	// HasStatus reports whether the message carried a STATUS= word.
	HasStatus bool
	// Requests is REQUESTS=n, when HasRequests: how many requests the worker
	// has begun since it started. Of several REQUESTS= words in one
	// datagram, the largest counts, as the master keeps the largest it saw.
	Requests int
	// HasRequests reports whether the message carried a REQUESTS= word.
	HasRequests bool
	// Barrier is systemd's BARRIER=1: the sender passed a descriptor and
	// waits until it is closed, which the master does once it has handled
	// every datagram sent before (systemd-notify does this unless
	// --no-block, so it is still alive while its READY=1 is attributed).
	Barrier bool
}

// keyBarrier is sd_notify_barrier(3)'s word, which systemd-notify sends
// after its message.
const keyBarrier = "BARRIER"

// ErrMalformed is wrapped by ParseMessage's error for a datagram that breaks
// the protocol; the master drops such datagrams and counts them.
var ErrMalformed = errors.New("malformed notify message")

// ParseMessage parses a notify datagram. It fails for an empty or oversized
// datagram, invalid UTF-8, a NUL byte, a line that is not KEY=VALUE, or a
// known key with a value it does not define (REQUESTS= takes a decimal
// number of digits only, no sign, that fits in an int).
func ParseMessage(b []byte) (Message, error) {
	m := Message{Busy: -1}
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(b) > proto.MaxNotifySize {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), proto.MaxNotifySize)
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return m, fmt.Errorf("%w: not UTF-8 text", ErrMalformed)
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		key, val, ok := bytes.Cut(line, []byte("="))
		if !ok || len(key) == 0 {
			return m, fmt.Errorf("%w: %q is not KEY=VALUE", ErrMalformed, line)
		}
		switch string(key) {
		case proto.KeyReady:
			if string(val) != "1" {
				return m, fmt.Errorf("%w: READY=%s", ErrMalformed, val)
			}
			m.Ready = true
		case proto.KeyStopping:
			if string(val) != "1" {
				return m, fmt.Errorf("%w: STOPPING=%s", ErrMalformed, val)
			}
			m.Stopping = true
		case proto.KeyWatchdog:
			switch string(val) {
			case "1":
				m.Watchdog = true
			case "trigger":
				m.WatchdogTrigger = true
			default:
				return m, fmt.Errorf("%w: WATCHDOG=%s", ErrMalformed, val)
			}
		case proto.KeyBusy:
			switch string(val) {
			case "1":
				m.Busy = 1
			case "0":
				m.Busy = 0
			default:
				return m, fmt.Errorf("%w: BUSY=%s", ErrMalformed, val)
			}
		case proto.KeyStatus:
			m.Status, m.HasStatus = string(val), true
		case keyBarrier:
			if string(val) != "1" {
				return m, fmt.Errorf("%w: BARRIER=%s", ErrMalformed, val)
			}
			m.Barrier = true
		case proto.KeyRequests:
			n, err := proto.ParseCount(val)
			if err != nil {
				return m, fmt.Errorf("%w: REQUESTS=%s", ErrMalformed, val)
			}
			m.Requests, m.HasRequests = max(m.Requests, n), true
		}
	}
	return m, nil
}

// note is one datagram as read, with the sender's pid.
type note struct {
	pid int
	msg Message
	err error // malformed or without credentials
	// barrier is the descriptor a BARRIER=1 datagram passed: closed once
	// the note is handled (Pool.handleNotes), which tells the sender that
	// everything it sent before was. nil: none.
	barrier *os.File
}

// release closes the note's barrier descriptor, if any.
func (nt note) release() {
	if nt.barrier != nil {
		_ = nt.barrier.Close()
	}
}
