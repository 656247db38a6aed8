package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
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

// selfCPU returns the CPU time this process has used, at the microsecond
// precision of getrusage(2).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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

// childPIDs returns the pids of ppid's children, zombies included, from
// /proc/PPID/task/*/children: a child is listed under the thread that forked
// it. Cheaper than children, which reads every process of the machine.
func childPIDs(ppid int) []int {
	dir := "/proc/" + strconv.Itoa(ppid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/children")
		if err != nil {
			continue
		}
		for f := range bytes.FieldsSeq(b) {
			if pid, err := strconv.Atoi(string(f)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// fdCount is a process's file descriptors by kind: "pipe", "socket",
// "pidfd", "anon" (other anonymous inodes: epoll, eventfd, inotify...) and
// "file".
type fdCount map[string]int

// openFDs counts a process's file descriptors by kind.
func openFDs(pid int) fdCount {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	c := fdCount{}
	for _, e := range ents {
		target, err := os.Readlink(dir + e.Name())
		switch {
		case err != nil: // closed meanwhile
		case strings.HasPrefix(target, "pipe:"):
			c["pipe"]++
		case strings.HasPrefix(target, "socket:"):
			c["socket"]++
		case target == "anon_inode:[pidfd]":
			c["pidfd"]++
		case strings.HasPrefix(target, "anon_inode:"):
			c["anon"]++
		default:
			c["file"]++
		}
	}
	return c
}

func (c fdCount) total() int {
	n := 0
	for _, k := range c {
		n += k
	}
	return n
}

// childReader reads a process's children as childPIDs does, cheaply enough
// to poll: it keeps /proc/PID/task and each thread's children file open
// between reads (a seq_file is generated afresh by a read from offset 0), so
// a read is one getdents for the threads and one pread per thread.
type childReader struct {
	pid   int
	dir   *os.File
	files map[string]*os.File // by thread id
	buf   []byte
}

func newChildReader(pid int) *childReader {
	return &childReader{pid: pid, files: map[string]*os.File{}, buf: make([]byte, 64<<10)}
}

// pids returns the children's pids, zombies included; nil once the process
// is gone.
func (r *childReader) pids() []int {
	prefix := "/proc/" + strconv.Itoa(r.pid) + "/task/"
	if r.dir == nil {
		d, err := os.Open(prefix)
		if err != nil {
			return nil
		}
		r.dir = d
	}
	if _, err := r.dir.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	tids, err := r.dir.Readdirnames(-1)
	if err != nil {
		return nil
	}
	var pids []int
	for _, tid := range tids {
		f := r.files[tid]
		if f == nil {
			if f, err = os.Open(prefix + tid + "/children"); err != nil {
				continue
			}
			r.files[tid] = f
		}
		n, err := f.ReadAt(r.buf, 0)
		if err != nil && err != io.EOF {
			f.Close() // the thread has exited
			delete(r.files, tid)
			continue
		}
		for field := range bytes.FieldsSeq(r.buf[:n]) {
			if pid, err := strconv.Atoi(string(field)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// close closes the files r holds open.
func (r *childReader) close() {
	if r.dir != nil {
		r.dir.Close()
	}
	for _, f := range r.files {
		f.Close()
	}
	clear(r.files)
}

// runTime returns the CPU time a process's current main thread has run, at
// nanosecond precision unlike the ticks of stat: se.sum_exec_runtime from
// /proc/PID/sched (in milliseconds there), or the first field of
// /proc/PID/schedstat where sched is not compiled in. After an exec the
// thread that exec'd is the main thread and the time of the others, gone,
// is not in it: for a multi-threaded program before its exec it is a lower
// bound. 0 if the process is gone or neither file says.
func runTime(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	if b, err := os.ReadFile(dir + "sched"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "se.sum_exec_runtime" {
				ms, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	b, err := os.ReadFile(dir + "schedstat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns)
}
