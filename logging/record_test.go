package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var recTime = time.Date(2026, 11, 24, 19, 15, 0, 123e6, time.UTC)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		line string
		want Record
	}{
		{
			`2026-11-24T19:15:00.123Z echo[1234] stdout: the line`,
			Record{Time: recTime, Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1234, Stream: "stdout", Message: "the line"},
		},
		{
			"2026-11-24T19:15:00.123Z echo[1234] stderr:\n",
			Record{Time: recTime, Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1234, Stream: "stderr"},
		},
		{
			`2026-11-24T19:15:00.123Z my-daemon[1] stdout: a: b=c [x] y[2] z: w`,
			Record{Time: recTime, Level: "info", Module: "nsfd.my-daemon", Daemon: "my-daemon", PID: 1, Stream: "stdout", Message: "a: b=c [x] y[2] z: w"},
		},
		{
			`2026-11-24T19:15:00.123Z [INFO]  nsfd.echo: worker started: pid=1234`,
			Record{Time: recTime, Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1234, Message: "worker started"},
		},
		{
			`2026-11-24T19:15:00.123Z [WARN]  nsfd: 12 log lines dropped: total=40`,
			Record{Time: recTime, Level: "warn", Module: "nsfd", Message: "12 log lines dropped", Fields: map[string]string{"total": "40"}},
		},
		{
			`2026-11-24T19:15:00.123Z [ERROR] nsfd.echo.pool: spawn failed: exec: not found: error="exec \"x\": not found" slot=3 args=["a", "b c"]`,
			Record{Time: recTime, Level: "error", Module: "nsfd.echo.pool", Daemon: "echo", Message: "spawn failed: exec: not found",
				Fields: map[string]string{"error": `exec "x": not found`, "slot": "3", "args": `["a", "b c"]`}},
		},
		{
			`2026-11-24T19:15:00.123Z [DEBUG] nsfd.echo: pid=12 path="C:\dir"`,
			Record{Time: recTime, Level: "debug", Module: "nsfd.echo", Daemon: "echo", PID: 12, Fields: map[string]string{"path": `C:\dir`}},
		},
		{
			`2026-11-24T19:15:00.123Z [TRACE] nsfd: ready`,
			Record{Time: recTime, Level: "trace", Module: "nsfd", Message: "ready"},
		},
		{
			`2026-11-24T19:15:00.123Z [INFO]  no module here`,
			Record{Time: recTime, Level: "info", Message: "no module here"},
		},
		{
			`{"@timestamp":"2026-11-24T19:15:00.123Z","@level":"info","@module":"nsfd.echo","@message":"the line","daemon":"echo","pid":1234,"stream":"stdout"}`,
			Record{Time: recTime, Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1234, Stream: "stdout", Message: "the line"},
		},
		{
			`{"@level":"info","@message":"worker started","@module":"nsfd.echo","@timestamp":"2026-11-24T19:15:00.123Z","pid":1234,"slot":2,"tags":["a"],"ok":true}`,
			Record{Time: recTime, Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1234, Message: "worker started",
				Fields: map[string]string{"slot": "2", "tags": `["a"]`, "ok": "true"}},
		},
	}
	for _, tt := range tests {
		got, ok := ParseRecord([]byte(tt.line))
		if !ok {
			t.Errorf("ParseRecord(%q) not ok", tt.line)
			continue
		}
		if !got.Time.Equal(tt.want.Time) {
			t.Errorf("ParseRecord(%q) time %v, want %v", tt.line, got.Time, tt.want.Time)
		}
		got.Time = tt.want.Time
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRecord(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseRecordNot(t *testing.T) {
	for _, line := range []string{
		"",
		"garbage",
		"2026-11-24T19:15:00.123Z",
		"2026-11-24T19:15:00.123Z nothing",
		"2026-11-24T19:15:00.123Z echo[x] stdout: a",
		"2026-11-24T19:15:00.123Z echo[1] stdout:a",
		"2026-11-24T19:15:00.123Z [1] stdout: a",
		"2026-11-24T19:15:00.123Z [LOUD] nsfd: a",
		"yesterday echo[1] stdout: a",
		"  | a continuation line",
		"{}",
		`{"@message":1}`,
		`{"@message":"a"} {}`,
		"[1,2]",
	} {
		if r, ok := ParseRecord([]byte(line)); ok {
			t.Errorf("ParseRecord(%q) = %+v, want not ok", line, r)
		}
	}
}

// TestParseRecordRoundTrip: what the Sink writes, ParseRecord reads back, in
// both formats, master records and worker lines.
func TestParseRecordRoundTrip(t *testing.T) {
	for _, format := range []string{FormatText, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			mt := &memTarget{}
			s, _ := openTest(t, Config{Format: format, Level: "trace"}, mt)
			start := time.Now().Add(-time.Second)
			echo := s.Logger().Named("echo")
			echo.Info("worker started", "pid", 1234, "slot", 2)
			echo.Named("pool").Warn("spawn failed: try again", "error", errors.New(`exec "x": no such file`))
			s.Logger().Debug("reloaded")
			echo.Error("multi-line", "out", "line one\nline two")
			s.WorkerLine("echo", 1234, StreamStdout, []byte("the line: k=v"))
			s.WorkerLine("echo", 1235, StreamStderr, []byte(""))
			s.WorkerLine("echo", 1235, StreamStderr, []byte("tab\there <b>&</b> é"))
			closeSink(t, s)

			want := []Record{
				{Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1234, Message: "worker started", Fields: map[string]string{"slot": "2"}},
				{Level: "warn", Module: "nsfd.echo.pool", Daemon: "echo", Message: "spawn failed: try again", Fields: map[string]string{"error": `exec "x": no such file`}},
				{Level: "debug", Module: "nsfd", Message: "reloaded"},
				{Level: "error", Module: "nsfd.echo", Daemon: "echo", Message: "multi-line"},
				{Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1234, Stream: "stdout", Message: "the line: k=v"},
				{Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1235, Stream: "stderr"},
				{Level: "info", Module: "nsfd.echo", Daemon: "echo", PID: 1235, Stream: "stderr", Message: "tab\there <b>&</b> é"},
			}
			lines := mt.lines()
			got := parseLines(t, lines)
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d:\n%s", len(got), len(want), strings.Join(lines, "\n"))
			}
			for i := range want {
				g := got[i]
				if g.Time.Before(start) || g.Time.After(time.Now()) || g.Time.Location() != time.UTC {
					t.Errorf("record %d: time %v", i, g.Time)
				}
				g.Time = time.Time{}
				if i == 3 {
					// hclog's multi-line value: one line, its layout kept.
					if format == FormatText && !strings.Contains(lines[i], `out=\n  | line one\n  | line two`) {
						t.Errorf("multi-line record: %s", lines[i])
					}
					g.Message, g.Fields = strings.TrimSuffix(g.Message, `:\n  out=\n  | line one\n  | line two\n  `), nil
				}
				if !reflect.DeepEqual(g, want[i]) {
					t.Errorf("record %d: %s\n got %+v\nwant %+v", i, lines[i], g, want[i])
				}
			}
		})
	}
}

// TestRecordFormat pins the exact text and json layouts.
func TestRecordFormat(t *testing.T) {
	line := []byte("say \"hi\"\x00\n")
	f := newFormatter(false)
	if got, want := string(f.worker(recTime, "echo", 1234, "stdout", line)), "2026-11-24T19:15:00.123Z echo[1234] stdout: say \"hi\"\\x00\\n\n"; got != want {
		t.Errorf("text:\n got %q\nwant %q", got, want)
	}
	f = newFormatter(true)
	if got, want := string(f.worker(recTime.In(time.FixedZone("x", 3600)), "echo", 1234, "stdout", line)),
		`{"@timestamp":"2026-11-24T19:15:00.123Z","@level":"info","@module":"nsfd.echo","@message":"say \"hi\"\u0000\n","daemon":"echo","pid":1234,"stream":"stdout"}`+"\n"; got != want {
		t.Errorf("json:\n got %q\nwant %q", got, want)
	}
}

// FuzzParseRecord: ParseRecord never panics, and reads back any worker line
// the formatter writes.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		`2026-11-24T19:15:00.123Z echo[1234] stdout: the line`,
		`2026-11-24T19:15:00.123Z [INFO]  nsfd.echo: worker started: pid=1234 a="b\"c" d=[1, 2]`,
		`{"@timestamp":"2026-11-24T19:15:00.123Z","@level":"info","@module":"nsfd.echo","@message":"the line","daemon":"echo","pid":1234,"stream":"stdout"}`,
		`2026-11-24T19:15:00.123Z [WARN]  nsfd: a: k="unterminated`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseRecord(data)

		for _, jsonFormat := range []bool{false, true} {
			out := newFormatter(jsonFormat).worker(recTime, "echo", 42, StreamStderr, data)
			if bytes.Count(out, []byte{'\n'}) != 1 || jsonFormat && !json.Valid(out) {
				t.Fatalf("not a one-line record: %q", out)
			}
			r, ok := ParseRecord(out)
			if !ok || r.Daemon != "echo" || r.PID != 42 || r.Stream != StreamStderr || !r.Time.Equal(recTime) {
				t.Fatalf("ParseRecord(%q) = %+v, %v", out, r, ok)
			}
			if bad := terminalUnsafe(out[:len(out)-1]); bad != "" {
				t.Fatalf("record %q holds %s", out, bad)
			}
			want := string(AppendEscaped(nil, data))
			if jsonFormat {
				want = string(data)
				if !utf8.Valid(data) {
					continue
				}
			}
			if r.Message != want {
				t.Fatalf("message %q, want %q", r.Message, want)
			}
		}
	})
}

// ExampleParseRecord shows a record of the central log read back.
func ExampleParseRecord() {
	r, ok := ParseRecord([]byte(`2026-11-24T19:15:00.123Z [INFO]  nsfd.echo: worker started: pid=1234 slot=2`))
	fmt.Println(ok, r.Time.Format(time.RFC3339Nano), r.Level, r.Daemon, r.PID, r.Message, r.Fields)

	r, _ = ParseRecord([]byte(`2026-11-24T19:15:00.125Z echo[1234] stdout: hello`))
	fmt.Println(r.Daemon, r.PID, r.Stream, r.Message)
	// Output:
	// true 2026-11-24T19:15:00.123Z info echo 1234 worker started map[slot:2]
	// echo 1234 stdout hello
}
