package supervisor

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

func TestParseScale(t *testing.T) {
	limit := strconv.Itoa(config.MaxServersLimit)
	for _, tc := range []struct {
		in  string
		n   int
		abs bool
		bad bool
	}{
		{"+2", 2, false, false}, {"-1", -1, false, false}, {"5", 5, true, false}, {"+0", 0, false, false},
		{"007", 7, true, false}, {"+" + limit, config.MaxServersLimit, false, false}, {"-" + limit, -config.MaxServersLimit, false, false},
		{"0", 0, true, false}, {"", 0, false, true}, {"x", 0, false, true}, {"+", 0, false, true}, {"+-3", 0, false, true},
		{"--3", 0, false, true}, {"3+", 0, false, true}, {" 3", 0, false, true}, {"3.0", 0, false, true}, {"٣", 0, false, true},
		{"+" + strconv.Itoa(config.MaxServersLimit+1), 0, false, true},
		{"+9223372036854775807", 0, false, true}, {"+9223372036854775805", 0, false, true},
		{"-9223372036854775808", 0, false, true}, {"99999999999999999999999", 0, false, true},
	} {
		n, abs, err := ParseScale(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (n != tc.n || abs != tc.abs)) {
			t.Errorf("ParseScale(%q) = %d, %v, %v", tc.in, n, abs, err)
		}
		if err != nil && !errors.Is(err, ErrBadScale) {
			t.Errorf("ParseScale(%q): %v does not wrap ErrBadScale", tc.in, err)
		}
	}
}

func TestScalePolicy(t *testing.T) {
	base := prefork.PolicyOptions{MinServers: 2, MaxServers: 6, MinSpareServers: 1, MaxSpareServers: 3}
	top := prefork.PolicyOptions{MinServers: 5, MaxServers: config.MaxServersLimit, MinSpareServers: 1, MaxSpareServers: 3}
	for _, tc := range []struct {
		name     string
		o        prefork.PolicyOptions
		n        int
		abs      bool
		min, max int
		bad      string
	}{
		{"up", base, 2, false, 4, 8, ""},
		{"down to one", base, -1, false, 1, 5, ""},
		{"down past one stops at one", base, -5, false, 1, 5, ""},
		{"absolute", base, 5, true, 5, 9, ""},
		{"absolute down", base, 1, true, 1, 5, ""},
		{"to the limit", prefork.PolicyOptions{MinServers: 1, MaxServers: 2, MaxSpareServers: 1}, config.MaxServersLimit - 2, false, config.MaxServersLimit - 1, config.MaxServersLimit, ""},
		{"past the limit", top, 1, false, 0, 0, "more than the limit"},
		{"absolute past the limit", base, config.MaxServersLimit, true, 0, 0, "more than the limit"},
		{"max int", base, math.MaxInt, false, 0, 0, "out of range"},
		{"max int minus two", base, math.MaxInt - 2, false, 0, 0, "out of range"},
		{"min int", base, math.MinInt, false, 0, 0, "out of range"},
		{"absolute max int", base, math.MaxInt, true, 0, 0, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scalePolicy(tc.o, tc.n, tc.abs)
			if tc.bad != "" {
				if err == nil || !errors.Is(err, ErrBadScale) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("scalePolicy = %+v, %v; want an ErrBadScale saying %q", got, err, tc.bad)
				}
				return
			}
			if err != nil || got.MinServers != tc.min || got.MaxServers != tc.max {
				t.Fatalf("scalePolicy = %+v, %v; want min %d max %d", got, err, tc.min, tc.max)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("result %+v invalid: %v", got, err)
			}
		})
	}
}

// FuzzScalePolicy: whatever the amount, the result is valid and within the
// limit, or refused with the options unchanged in meaning.
func FuzzScalePolicy(f *testing.F) {
	f.Add(2, 6, 1, 3, 2, false)
	f.Add(1, 2, 0, 1, math.MaxInt, false)
	f.Add(5, 50, 2, 10, math.MaxInt-2, false)
	f.Add(5, 50, 2, 10, math.MinInt, true)
	f.Add(1, config.MaxServersLimit, 0, 1, 1, false)
	f.Fuzz(func(t *testing.T, minS, maxS, minSpare, maxSpare, n int, abs bool) {
		o := prefork.PolicyOptions{MinServers: minS, MaxServers: maxS, MinSpareServers: minSpare, MaxSpareServers: maxSpare}
		if o.Validate() != nil || maxS > config.MaxServersLimit {
			return // the config refuses these before any pool has them
		}
		got, err := scalePolicy(o, n, abs)
		if err != nil {
			if !errors.Is(err, ErrBadScale) {
				t.Fatalf("error %v does not wrap ErrBadScale", err)
			}
			return
		}
		if err := got.Validate(); err != nil || got.MaxServers > config.MaxServersLimit || got.MinServers < 1 {
			t.Fatalf("scalePolicy(%+v, %d, %v) = %+v (%v)", o, n, abs, got, err)
		}
		if got.MaxServers-got.MinServers != o.MaxServers-o.MinServers {
			t.Fatalf("min and max did not move together: %+v -> %+v", o, got)
		}
	})
}
