package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procInfo is what the benchmarks read from /proc/PID/stat.
type procInfo struct {
	pid   int
	ppid  int
	comm  string
	state byte
	cpu   time.Duration // utime + stime
}

func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	open, closeP := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closeP < 0 || closeP+2 > len(b) {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After the command: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	f := strings.Fields(string(b[closeP+2:]))
	if len(f) < 13 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, _ := strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return procInfo{
		pid:   pid,
		ppid:  ppid,
		comm:  string(b[open+1 : closeP]),
		state: f[0][0],
		cpu:   time.Duration(utime+stime) * clockTick,
	}, nil
}

// procCPU returns a process's utime+stime, or 0 if it is gone.
func procCPU(pid int) time.Duration {
	p, err := readProc(pid)
	if err != nil {
		return 0
	}
	return p.cpu
}

// totalCPU sums procCPU over pids.
func totalCPU(pids []int) time.Duration {
	var d time.Duration
	for _, pid := range pids {
		d += procCPU(pid)
	}
	return d
}

// children returns the live (not zombie) children of ppid.
func children(ppid int) []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil || p.ppid != ppid || p.state == 'Z' {
			continue
		}
		out = append(out, p)
	}
	return out
}

// procEnv returns the value of one environment variable of a process.
func procEnv(pid int, key string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte{'='}); ok && string(k) == key {
			return string(v)
		}
	}
	return ""
}

// memInfo is what the benchmarks read from /proc/PID/status.
type memInfo struct {
	rss, hwm      int64 // bytes: VmRSS, VmHWM (peak RSS)
	anon, fileRSS int64 // bytes: RssAnon (heap, stacks), RssFile (mapped binary and libraries)
	threads       int
}

func readMem(pid int) (memInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memInfo{}, err
	}
	var m memInfo
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n << 10 // kB
		case "VmHWM":
			m.hwm = n << 10
		case "RssAnon":
			m.anon = n << 10
		case "RssFile":
			m.fileRSS = n << 10
		case "Threads":
			m.threads = int(n)
		}
	}
	if m.rss == 0 {
		return m, errors.New("/proc/" + strconv.Itoa(pid) + "/status: no VmRSS")
	}
	return m, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
