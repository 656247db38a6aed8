package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "10s", want: 10 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "30", want: 30 * time.Second},
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "-5s", err: "duration must not be negative (got -5s)"},
		{in: "-5", err: "duration must not be negative (got -5)"},
		{in: "10 secs", err: `"10 secs" is not a duration (write 10s, 1m30s, or a number of seconds)`},
		{in: "1.5", err: "is not a duration"},
		{in: "s", err: "is not a duration"},
		{in: "99999999999999999999", err: "too long"},
		{in: "9999999999999", err: "too long"},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCount(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  string
	}{
		{in: "0", want: 0},
		{in: "42", want: 42},
		{in: "007", want: 7},
		{in: "-1", err: "must not be negative (got -1)"},
		{in: "+1", err: `"+1" is not an integer`},
		{in: "1e3", err: `"1e3" is not an integer`},
		{in: "ten", err: `"ten" is not an integer`},
		{in: "0x10", err: "is not an integer"},
		{in: "99999999999999999999", err: "too large"},
	}
	for _, tt := range tests {
		got, err := parseCount(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseCount(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseCount(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  string
	}{
		{in: "0660", want: 0o660},
		{in: "660", want: 0o660},
		{in: "0o600", want: 0o600},
		{in: "022", want: 0o22},
		{in: "0", want: 0},
		{in: "0777", want: 0o777},
		{in: "01777", err: "out of range (at most 0777)"},
		{in: "0999", err: `"0999" is not an octal mode`},
		{in: "rw-rw----", err: "is not an octal mode"},
		{in: "0o", err: "is not an octal mode"},
		{in: "+660", err: "is not an octal mode"},
	}
	for _, tt := range tests {
		got, err := parseMode(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseMode(%q) = %o, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseMode(%q) = %o, %v; want %o", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "0", want: 0},
		{in: "1000", want: 1000},
		{in: "512b", want: 512},
		{in: "10K", want: 10 << 10},
		{in: "10k", want: 10 << 10},
		{in: "10KiB", want: 10 << 10},
		{in: "10KB", want: 10 << 10},
		{in: "100M", want: 100 << 20},
		{in: "100 MiB", want: 100 << 20},
		{in: "2G", want: 2 << 30},
		{in: "2gib", want: 2 << 30},
		{in: "10XB", err: `"10XB" is not a size`},
		{in: "M", err: "is not a size"},
		{in: "1.5M", err: "is not a size"},
		{in: "-1M", err: "size must not be negative"},
		{in: "99999999999G", err: "too large"},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseSize(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "65536": 65536, "unlimited": Unlimited, "Unlimited": Unlimited, "infinity": Unlimited} {
		if got, err := parseLimit(in); err != nil || got != want {
			t.Errorf("parseLimit(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "lots", "1K", "99999999999999999999999"} {
		if got, err := parseLimit(in); err == nil {
			t.Errorf("parseLimit(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]string{
		"0": "error", "1": "warn", "2": "info", "3": "info", "4": "debug",
		"trace": "trace", "DEBUG": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error", "err": "error",
	} {
		if got, err := parseLogLevel(in); err != nil || got != want {
			t.Errorf("parseLogLevel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"5", "-1", "verbose", ""} {
		if got, err := parseLogLevel(in); err == nil {
			t.Errorf("parseLogLevel(%q) = %q, want an error", in, got)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(" a, b  c,,d\te ")
	if strings.Join(got, "|") != "a|b|c|d|e" {
		t.Errorf("splitList = %q", got)
	}
}

func TestNearest(t *testing.T) {
	names := []string{"min_servers", "max_servers", "min_spare_servers", "max_spare_servers", "port", "env", "node_name", "user", "cwd"}
	for in, want := range map[string]string{
		"min_sever":          "min_servers",
		"min_server":         "min_servers",
		"Min_Servers":        "min_servers",
		"max_spare_server":   "max_spare_servers",
		"prot":               "",
		"pork":               "port",
		"node":               "node_name",
		"enviroment":         "env",
		"usr":                "user",
		"workers":            "",
		"x":                  "",
		"completely_unknown": "",
	} {
		if got := nearest(in, names); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}
