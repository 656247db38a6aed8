//go:build linux && cgo

// Importing "C" links shim_fast_linux.c into nsfd: its constructor runs the
// exec shim's common case before the Go runtime starts.

package main

import "C"
