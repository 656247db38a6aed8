package main

import "github.com/nsfd/nsfd/prefork"

// The portable process backend runs this program again as its keeper (see
// prefork.RunKeeperIfAsked): that happens before main, whatever the
// command line says.
func init() { prefork.RunKeeperIfAsked() }
