// Command nsfd is the nsfd master and its command-line client.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/supervisor"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = ""

func main() {
	if len(os.Args) > 1 && os.Args[1] == prefork.ShimArg {
		err := prefork.RunShim(os.Args[2:])
		fmt.Fprintln(os.Stderr, "nsfd exec:", err)
		os.Exit(127)
	}
	// The built-in workers the master runs (`nsfd __nsfd_builtin NAME
	// args...`) dispatch before the CLI: their arguments are theirs.
	if len(os.Args) > 1 && os.Args[1] == supervisor.BuiltinArg {
		if err := runBuiltin(context.Background(), os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "nsfd: %v\n", err)
			os.Exit(exitFailure)
		}
		os.Exit(exitOK)
	}
	// The main goroutine serves the main thread (see upgrade.go); the
	// command runs in another.
	go func() { os.Exit(NewMain().Run(context.Background(), os.Args[1:])) }()
	prefork.ServeMainThread()
}

// Main is the CLI: verbs, flags and exit codes; the work is in the packages.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	// Etc is the configuration directory of the command line (--etc, else
	// $NSFD_ETC, else ./etc); set once the flags are parsed.
	Etc string
}

// NewMain returns a Main on the process's stdout and stderr.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

// maxServersLimit is config.MaxServersLimit, for the usage texts.
var maxServersLimit = strconv.Itoa(config.MaxServersLimit)

func defaultEtc() string {
	if e := os.Getenv("NSFD_ETC"); e != "" {
		return e
	}
	return "etc"
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
