// Command logspam is the worker of BenchmarkLogShipping: it writes lines to
// stdout as fast as it can, one write(2) per line as a logger does, then
// waits until SIGTERM without exiting, so that nsfd does not replace it.
//
//	logspam -lines 100000 -done /tmp/x/done
//
// It prints "logspam worker ID ready" at once, then waits for SIGUSR1, so
// that the benchmark starts every worker's burst at the same moment; ID is
// $NSFD_WORKER (nsfd sets it to the worker's slot; the benchmark sets it for
// the workers it starts itself). Line SEQ (0, 1, …, lines-1) reads
//
//	logline w=ID seq=SEQ payload…
//
// about 100 bytes in all. After the last line it creates the file -done/ID
// (if -done is set), out of band, for the benchmark to know it has written
// everything even when lines are lost on the way.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/nsfd/nsfd/worker"
)

// payload pads a line to about 100 bytes, a typical log line.
const payload = "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "logspam:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("logspam", flag.ContinueOnError)
	lines := fs.Int("lines", 1000, "lines to write")
	done := fs.String("done", "", "directory in which to create a file named after the worker id once every line is written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id := os.Getenv(worker.EnvWorker)
	if _, err := strconv.Atoi(id); err != nil {
		return fmt.Errorf("%s=%q: not a worker id", worker.EnvWorker, id)
	}
	start := make(chan os.Signal, 1)
	signal.Notify(start, syscall.SIGUSR1)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if _, err := fmt.Printf("logspam worker %s ready\n", id); err != nil {
		return err
	}
	select {
	case <-start:
	case <-stop:
		return nil
	}
	line := make([]byte, 0, 128)
	prefix := "logline w=" + id + " seq="
	for seq := range *lines {
		line = append(line[:0], prefix...)
		line = strconv.AppendInt(line, int64(seq), 10)
		line = append(line, ' ')
		line = append(line, payload...)
		line = append(line, '\n')
		if _, err := os.Stdout.Write(line); err != nil {
			return err
		}
	}
	if *done != "" {
		if err := os.WriteFile(filepath.Join(*done, id), nil, 0o644); err != nil {
			return err
		}
	}
	<-stop
	return nil
}
