package logging_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/nsfd/nsfd/logging"
)

// ExampleSink_Capture shows a worker's output wired into the central log: the
// worker gets the write ends of two pipes, the master keeps the read ends and
// captures them until the worker has exited.
func ExampleSink_Capture() {
	sink, err := logging.Open(logging.Config{File: "var/log/nsfd.log"})
	if err != nil {
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sink.Close(ctx)
	}()
	log := sink.Logger().Named("echo")

	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	cmd := exec.Command("bin/echo")
	cmd.Stdout, cmd.Stderr = outW, errW // *os.File: no copying goroutine in os/exec
	if err := cmd.Start(); err != nil {
		log.Error("spawn failed", "error", err)
		return
	}
	outW.Close() // the worker holds the write ends now
	errW.Close()
	pid := cmd.Process.Pid
	log.Info("worker started", "pid", pid)

	captured := make(chan struct{}, 2)
	for stream, r := range map[string]*os.File{logging.StreamStdout: outR, logging.StreamStderr: errR} {
		go func() {
			defer r.Close()
			sink.Capture("echo", pid, stream, r)
			captured <- struct{}{}
		}()
	}
	err = cmd.Wait()
	<-captured
	<-captured
	log.Info("worker exited", "pid", pid, "error", err)
}

// ExampleTail shows the last two records of daemon echo, as
// `nsfd logs -n 2 --daemon echo` does.
func ExampleTail() {
	dir, err := os.MkdirTemp("", "nsfd-example")
	if err != nil {
		return
	}
	defer os.RemoveAll(dir)
	path := dir + "/nsfd.log"
	os.WriteFile(path, []byte(`2026-11-24T19:15:00.100Z [INFO]  nsfd.echo: worker started: pid=1234
2026-11-24T19:15:00.125Z echo[1234] stdout: hello
2026-11-24T19:15:00.130Z web[1300] stderr: GET /
2026-11-24T19:15:00.150Z [WARN]  nsfd.echo: worker exited: pid=1234
2026-11-24T19:15:00.160Z [INFO]  nsfd: reloaded
`), 0o600)

	opts := logging.FollowOptions{Lines: 2, Daemon: "echo"}
	logging.Tail(context.Background(), path, opts, func(line []byte, rec logging.Record) error {
		fmt.Printf("%s %d %q\n", rec.Level, rec.PID, rec.Message)
		return nil
	})
	// Output:
	// info 1234 "hello"
	// warn 1234 "worker exited"
}
