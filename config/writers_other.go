//go:build !linux

package config

import (
	"os"
	"syscall"
	"time"
)

// beingWritten cannot tell, on this system, whether another process has f
// open for writing: the watcher's quiet period is the only guard.
func beingWritten(*os.File) bool { return false }

// ctime is not compared on this system; size and modification time are.
func ctime(*syscall.Stat_t) time.Time { return time.Time{} }
