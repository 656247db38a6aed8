package prefork

import (
	"errors"
	"strings"
	"testing"
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
		{in: "", bad: true},
		{in: "READY", bad: true},
		{in: "=1", bad: true},
		{in: "READY=2", bad: true},
		{in: "BUSY=yes", bad: true},
		{in: "STOPPING=0", bad: true},
		{in: "WATCHDOG=2", bad: true},
		{in: "READY=1\x00", bad: true},
		{in: "STATUS=\xff\xfe", bad: true},
		{in: strings.Repeat("A", MaxNotifySize+1), bad: true},
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
	for _, s := range []string{"READY=1", "BUSY=1\nBUSY=0", "STATUS=x\nWATCHDOG=1", "garbage", "STOPPING=1\n\n"} {
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
		if len(b) > MaxNotifySize {
			t.Fatal("oversized datagram accepted")
		}
	})
}
