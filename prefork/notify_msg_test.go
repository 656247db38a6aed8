package prefork

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	proto "github.com/nsfd/nsfd/worker"
)

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Message
		bad  bool
	}{
		{in: "READY=1", want: Message{Ready: true, Busy: -1}},
		{in: "BUSY=1", want: Message{Busy: 1}},
		{in: "BUSY=0", want: Message{Busy: 0}},
		{in: "WATCHDOG=1", want: Message{Watchdog: true, Busy: -1}},
		{in: "WATCHDOG=trigger", want: Message{WatchdogTrigger: true, Busy: -1}},
		{in: "STOPPING=1", want: Message{Stopping: true, Busy: -1}},
		{in: "STATUS=serving 3 clients", want: Message{Status: "serving 3 clients", HasStatus: true, Busy: -1}},
		{in: "STATUS=", want: Message{HasStatus: true, Busy: -1}},
		{in: "READY=1\nSTATUS=up\nBUSY=0\n", want: Message{Ready: true, Status: "up", HasStatus: true, Busy: 0}},
		{in: "MAINPID=42\nERRNO=2", want: Message{Busy: -1}}, // systemd words we do not use
		{in: "STATUS=a=b", want: Message{Status: "a=b", HasStatus: true, Busy: -1}},
		{in: "REQUESTS=0", want: Message{HasRequests: true, Busy: -1}},
		{in: "REQUESTS=17", want: Message{Requests: 17, HasRequests: true, Busy: -1}},
		{in: "REQUESTS=007", want: Message{Requests: 7, HasRequests: true, Busy: -1}},
		{in: "BUSY=1\nREQUESTS=1", want: Message{Busy: 1, Requests: 1, HasRequests: true}},
		{in: "BUSY=0\nREQUESTS=12", want: Message{Busy: 0, Requests: 12, HasRequests: true}},
		{in: "STOPPING=1\nREQUESTS=1000", want: Message{Stopping: true, Requests: 1000, HasRequests: true, Busy: -1}},
		{in: "REQUESTS=9\nREQUESTS=5", want: Message{Requests: 9, HasRequests: true, Busy: -1}}, // the largest counts
		{in: "REQUESTS=" + strconv.Itoa(math.MaxInt), want: Message{Requests: math.MaxInt, HasRequests: true, Busy: -1}},
		{in: "READY=1\nBARRIER=1", want: Message{Ready: true, Barrier: true, Busy: -1}},
		{in: "BARRIER=0", bad: true},
		{in: "", bad: true},
		{in: "READY", bad: true},
		{in: "=1", bad: true},
		{in: "READY=2", bad: true},
		{in: "BUSY=yes", bad: true},
		{in: "STOPPING=0", bad: true},
		{in: "WATCHDOG=2", bad: true},
		{in: "REQUESTS=", bad: true},
		{in: "REQUESTS=-1", bad: true},
		{in: "REQUESTS=+1", bad: true},
		{in: "REQUESTS= 1", bad: true},
		{in: "REQUESTS=1.0", bad: true},
		{in: "REQUESTS=0x10", bad: true},
		{in: "REQUESTS=many", bad: true},
		{in: "BUSY=0\nREQUESTS=1e3", bad: true},
		{in: "REQUESTS=" + strconv.FormatUint(uint64(math.MaxInt)+1, 10), bad: true},
		{in: "REQUESTS=99999999999999999999999", bad: true},
		{in: "READY=1\x00", bad: true},
		{in: "STATUS=\xff\xfe", bad: true},
		{in: strings.Repeat("A", proto.MaxNotifySize+1), bad: true},
	} {
		got, err := ParseMessage([]byte(tc.in))
		if tc.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseMessage(%q) = %+v, %v; want ErrMalformed", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMessage(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{"READY=1", "BUSY=1\nBUSY=0", "STATUS=x\nWATCHDOG=1", "garbage", "STOPPING=1\n\n",
		"BUSY=0\nREQUESTS=12", "REQUESTS=9\nREQUESTS=5", "REQUESTS=-1", "REQUESTS=9223372036854775808"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if m.Busy < -1 || m.Busy > 1 {
			t.Fatalf("busy %d", m.Busy)
		}
		if len(b) > proto.MaxNotifySize {
			t.Fatal("oversized datagram accepted")
		}
		if m.Requests < 0 || !m.HasRequests && m.Requests != 0 {
			t.Fatalf("requests %d (has %v)", m.Requests, m.HasRequests)
		}
		if m.HasRequests {
			again, err := ParseMessage([]byte(proto.NotifyRequests + strconv.Itoa(m.Requests)))
			if err != nil || again.Requests != m.Requests {
				t.Fatalf("REQUESTS=%d does not round-trip: %+v, %v", m.Requests, again, err)
			}
		}
	})
}
