package prefork

import "testing"

// TestPumpKeepsTheProcsContract: the Linux backend does what a pool needs
// of a process backend.
func TestPumpKeepsTheProcsContract(t *testing.T) {
	p, err := OpenPump()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	testProcsContract(t, p)
}
