package prefork

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// residentBytes returns the resident memory of process pid.
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, errors.New("malformed statm")
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// procUsage returns what process pid alone uses, from /proc: its CPU time,
// resident memory and peak (VmHWM), one process.
func procUsage(pid int) (GroupStats, error) {
	f, err := statFields(pid)
	if err != nil {
		return GroupStats{}, err
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	rss, err := residentBytes(pid)
	if err != nil {
		return GroupStats{}, err
	}
	s := GroupStats{CPUSeconds: float64(ut+st) / clockTicks, MemoryBytes: rss, MemoryPeak: rss, Procs: 1}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					s.MemoryPeak = kb << 10
				}
			}
		}
	}
	return s, nil
}
