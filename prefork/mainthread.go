package prefork

import (
	"sync/atomic"
)

// The main thread. A worker is started with a parent-death signal
// (SIGKILL), and Linux sends it when the *thread* that forked the worker
// exits, not only the process. execve(2) ends every thread of the process
// but the one calling it, so a master that re-executes itself in place (an
// upgrade) would kill every worker forked by another thread. Hence: a binary
// that means to re-execute itself locks its main goroutine to the main
// thread (runtime.LockOSThread in an init func) and serves ServeMainThread
// there; every worker is then forked, and the re-execution done, on that one
// thread, which survives the execve, so the workers outlive it as its
// children. Without a server (tests, a binary that never re-executes) the
// work runs on the caller's thread.

// mainThread is the queue ServeMainThread serves; nil until it runs.
var mainThread atomic.Pointer[chan func()]

// ServeMainThread runs, on the calling goroutine's thread, what the process
// backend must do on the main thread (forks, the re-execution of an
// upgrade), forever. Call it from main, on the main goroutine locked to the
// main thread by runtime.LockOSThread in an init func, and run the rest of
// the program in another goroutine.
func ServeMainThread() {
	c := make(chan func())
	mainThread.Store(&c)
	for f := range c {
		f()
	}
}

// onMainThread runs f on the main thread if ServeMainThread serves it,
// else on the caller's thread, and returns once f has returned.
func onMainThread(f func()) {
	c := mainThread.Load()
	if c == nil {
		f()
		return
	}
	done := make(chan struct{})
	*c <- func() {
		defer close(done)
		f()
	}
	<-done
}
