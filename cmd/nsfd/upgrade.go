package main

import (
	"runtime"
)

// The master forks its workers and re-executes itself (nsfd upgrade) on the
// main thread, which survives execve: a worker's parent-death signal fires
// when the thread that forked it exits (see prefork.ServeMainThread).
func init() { runtime.LockOSThread() }
