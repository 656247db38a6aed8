package prefork

import (
	"bytes"
	"errors"
	"os"
	"strconv"
)

// procFS reads /proc.
var procFS procReader = procDir("/proc")

// procDir is a procReader on a proc file system mounted at it.
type procDir string

var _ procReader = procDir("")

func (d procDir) stat(pid int) (int, uint64, error) {
	b, err := os.ReadFile(string(d) + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(b)
}

func (d procDir) cgroup(pid int) (string, error) {
	b, err := os.ReadFile(string(d) + "/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	return parseProcCgroup(b), nil
}

var errProcStat = errors.New("malformed /proc/PID/stat")

// parseProcStat returns the parent (field 4) and the start time (field 22)
// of a /proc/PID/stat line. The command name (field 2) is in parentheses
// and may hold spaces and parentheses: the fields after it follow the last
// ')'.
func parseProcStat(b []byte) (int, uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errProcStat
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, the state
	if len(f) < 20 {
		return 0, 0, errProcStat
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, 0, errProcStat
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, 0, errProcStat
	}
	return ppid, start, nil
}

// parseProcCgroup returns the cgroup2 path ("0::PATH") of /proc/PID/cgroup;
// "" if there is none.
func parseProcCgroup(b []byte) string {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			return string(p)
		}
	}
	return ""
}

// workerGroupPath is w's control group as /proc/PID/cgroup shows it; "" if
// it has none.
func workerGroupPath(w *worker) string {
	if w.cg == nil {
		return ""
	}
	return w.cg.procPath()
}
