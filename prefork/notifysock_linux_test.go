package prefork

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

// FuzzParseDatagram: whatever a datagram and its control message hold, the
// master gets a note without panicking; a note it acts on has the sender's
// pid from SCM_CREDENTIALS and a message ParseMessage accepts.
func FuzzParseDatagram(f *testing.F) {
	creds := unix.UnixCredentials(&unix.Ucred{Pid: 4242, Uid: 0, Gid: 0})
	for _, s := range []string{"READY=1", "STATUS=\x1b]0;x\x07", "BUSY=1\nBUSY=0\nREQUESTS=9", "", "\xff"} {
		f.Add([]byte(s), creds, 0)
		f.Add([]byte(s), []byte{}, 0)
		f.Add([]byte(s), creds, unix.MSG_TRUNC)
		f.Add([]byte(s), creds[:len(creds)-4], 0)
	}
	f.Fuzz(func(t *testing.T, b, oob []byte, flags int) {
		nt, _ := parseDatagram(b, oob, flags) // its descriptors are made up: not to be closed
		if nt.err != nil {
			if !errors.Is(nt.err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", nt.err)
			}
			return
		}
		if nt.pid <= 0 {
			t.Fatalf("a note without a sender's pid: %+v", nt)
		}
		if flags&unix.MSG_TRUNC != 0 || len(b) > proto.MaxNotifySize {
			t.Fatal("a truncated or oversized datagram accepted")
		}
		if _, err := ParseMessage(b); err != nil {
			t.Fatalf("accepted a datagram ParseMessage refuses: %v", err)
		}
	})
}
