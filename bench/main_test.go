package bench

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var (
	flagDuration = flag.Duration("bench.duration", time.Second, "length of one measurement of one side")
	flagRounds   = flag.Int("bench.rounds", 10, "measurements of each side per workload, alternating the sides")
	flagWarmup   = flag.Duration("bench.warmup", time.Second, "load on each side before the first round")
	flagWorkers  = flag.Int("bench.workers", 4, "worker processes per daemon, under nsfd and direct alike")
	flagClients  = flag.Int("bench.clients", 0, "concurrent client connections; 0: as many as workers (one connection per echo worker)")
	flagDaemons  = flag.Int("bench.idle-daemons", 10, "daemons of the master-overhead benchmark")
	flagIdle     = flag.Int("bench.idle-workers", 100, "idle workers per daemon of the master-overhead benchmark")
	flagIdleWin  = flag.Duration("bench.idle-window", 5*time.Second, "window over which the idle master's CPU is measured")
	flagBinDir   = flag.String("bench.bin", "", "directory holding nsfd, echo, http and kv already built (e.g. bin/ after `make build`); empty: build them")
)

// bins holds the paths of the binaries the benchmarks run.
var bins struct {
	nsfd, echo, ht, kv string
}

func setBins(dir string) {
	bins.nsfd, bins.echo, bins.ht = filepath.Join(dir, "nsfd"), filepath.Join(dir, "echo"), filepath.Join(dir, "http")
	bins.kv = filepath.Join(dir, "kv")
}

func TestMain(m *testing.M) {
	started := time.Now()
	code := runMain(m)
	if *flagReport != "" && code == 0 {
		if err := writeReport(*flagReport, started); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			code = 1
		} else {
			fmt.Fprintln(os.Stderr, "bench: report written to", *flagReport)
		}
	}
	os.Exit(code)
}

func runMain(m *testing.M) int {
	flag.Parse()
	if *flagQuick {
		quickDefaults()
	}
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		return m.Run() // no benchmark asked for: nothing to build
	}
	if *flagBinDir != "" {
		dir, err := filepath.Abs(*flagBinDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		setBins(dir)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "nsfd-bench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	repo, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	setBins(dir)
	for _, b := range [][2]string{{bins.nsfd, "./cmd/nsfd"}, {bins.echo, "./examples/echo"}, {bins.ht, "./examples/http"}, {bins.kv, "./examples/kv"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: build %s: %v\n%s", b[1], err, out)
			return 1
		}
	}
	return m.Run()
}

// quickDefaults shortens the data path's rounds under -bench.quick, where
// the flags were not set explicitly.
func quickDefaults() {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range map[string]string{"bench.rounds": "3", "bench.duration": "500ms", "bench.warmup": "300ms"} {
		if !set[name] {
			flag.Set(name, v)
		}
	}
}
