//go:build unix

package prefork

import "syscall"

// Exec replaces the process image with path (execve), from the main thread
// when ServeMainThread serves it: the workers forked there survive, as
// children of the new image. It returns only on failure, and then nothing
// has changed.
func Exec(path string, argv, env []string) error {
	var err error
	onMainThread(func() { err = syscall.Exec(path, argv, env) })
	return err
}
