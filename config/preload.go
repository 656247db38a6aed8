package config

// checkPreload refuses preload = true where it cannot work: a builtin
// worker (Go, nothing to preload), a chroot (the workers open their output
// FIFOs in run_dir, outside it), the portable process backend (only the
// pump makes the master the subreaper that the preloaded workers need).
func (l *daemonLoader) checkPreload() {
	d := l.d
	line := l.lines[".preload"]
	if !d.Preload || line == 0 {
		return
	}
	e := entry{Key: "preload", Line: line}
	switch {
	case d.Builtin != "":
		l.failHint(e, "a builtin worker cannot be preloaded", "remove preload, or run a command")
	case d.Chroot != "":
		l.failHint(e, "a preloaded daemon cannot be chrooted: its workers open their output FIFOs in run_dir", "remove preload or chroot")
	case l.m != nil && l.m.ProcessBackend == "portable":
		l.failHint(e, "needs the pump process backend; the master's process_backend is portable", "remove preload, or use process_backend = pump (Linux)")
	}
}
