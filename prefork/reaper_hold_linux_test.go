package prefork

// holdReaper keeps the tests' orphan reaper (Pump's, which reads /proc on
// SIGCHLD) from running a pass until the returned func is called: a test
// that counts this process's descriptors must not count the reaper's.
func holdReaper() func() {
	if pm, ok := testProcs.(*Pump); ok {
		pm.r.pass.Lock()
		return pm.r.pass.Unlock
	}
	return func() {}
}
