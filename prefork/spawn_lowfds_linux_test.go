package prefork

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLowFDsLendTheirPlaces: a spawn's descriptors are copied onto the
// reserved low ones for the spawn and /dev/null is put back after it, so
// the master keeps no extra reference to a worker's pipe; too many go
// through where they are.
func TestLowFDsLendTheirPlaces(t *testing.T) {
	l := openLowFDs()
	if l == nil {
		t.Fatal("no low descriptors")
	}
	defer l.close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	same := func(a, b int) bool {
		ok, err := sameOpenFile(os.Getpid(), a, b)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	var got []int
	l.with([]int{int(r.Fd()), int(w.Fd())}, func(fds []int) { got = append(got, fds...) })
	if len(got) != 2 || got[0] != l.fds[0] {
		t.Fatalf("spawn got %v, want the low %v", got, l.fds[:2])
	}
	var during bool
	l.with([]int{int(r.Fd()), int(w.Fd())}, func(fds []int) { during = same(fds[1], int(w.Fd())) })
	if !during {
		t.Error("the low descriptor does not hold the write end during the spawn")
	}
	if same(l.fds[1], int(w.Fd())) || !same(l.fds[1], l.null) {
		t.Error("after the spawn the low descriptor still holds the write end")
	}
	// The write end's last copy closed: the reader sees EOF, none held.
	w.Close()
	buf := make([]byte, 1)
	if n, err := unix.Read(int(r.Fd()), buf); n != 0 || err != nil {
		t.Errorf("read after the last writer closed: %d %v; want EOF", n, err)
	}
	many := make([]int, lowFDCount+1)
	for i := range many {
		many[i] = int(r.Fd())
	}
	l.with(many, func(fds []int) { got = fds })
	if got[0] != int(r.Fd()) {
		t.Error("more descriptors than reserved were moved")
	}
}
