package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// httpWrk is http keep-alive driven by wrk (Debian's package) instead of
// the benchmark's own client: the same comparison through a load generator
// anyone knows, in its own process.
const httpWrk workload = 100

var (
	wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkReq = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in`)
	wrkErr = regexp.MustCompile(`Non-2xx or 3xx responses: ([0-9]+)|Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
	wrkLat = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// wrkVersion returns wrk's version line, or "" when wrk is not installed.
func wrkVersion() string {
	path, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	out, _ := exec.Command(path, "-v").CombinedOutput() // prints its usage and exits 1
	line, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(line, "wrk ") {
		return "wrk"
	}
	if i := strings.Index(line, " ["); i > 0 {
		line = line[:i]
	}
	return line
}

// runWrk runs wrk with one thread and clients connections against addr for
// d and returns what it reports in the load generator's terms.
func runWrk(ctx context.Context, addr string, clients int, d time.Duration) loadResult {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "wrk", "-t1", "-c"+strconv.Itoa(clients), "-d"+strconv.Itoa(secs)+"s",
		"--latency", "http://"+addr+"/").CombinedOutput()
	r := loadResult{Elapsed: time.Since(t0)}
	if err != nil {
		r.Errors, r.FirstErr = 1, fmt.Sprintf("wrk: %v: %s", err, out)
		return r
	}
	return parseWrk(string(out), r)
}

// parseWrk reads wrk's --latency report into r.
func parseWrk(out string, r loadResult) loadResult {
	m := wrkRPS.FindStringSubmatch(out)
	n := wrkReq.FindStringSubmatch(out)
	if m == nil || n == nil {
		r.Errors, r.FirstErr = 1, "wrk: no Requests/sec in its output: "+out
		return r
	}
	rps, _ := strconv.ParseFloat(m[1], 64)
	r.Requests, _ = strconv.Atoi(n[1])
	if rps > 0 {
		// wrk's own clock: its rate is requests over its measured time.
		r.Elapsed = time.Duration(float64(r.Requests) / rps * float64(time.Second))
	}
	for _, e := range wrkErr.FindAllStringSubmatch(out, -1) {
		for _, f := range e[1:] {
			k, _ := strconv.Atoi(f)
			r.Errors += k
		}
	}
	if r.Errors > 0 {
		r.FirstErr = "wrk reported errors"
	}
	for _, l := range wrkLat.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[l[3]]
		d := time.Duration(v * float64(unit))
		if l[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	return r
}
