package prefork

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

// mmsgBatchSize is how many datagrams one recvmmsg(2) call reads at most.
// A burst of BUSY/IDLE reports from a busy pool is read 16 at a time, one
// system call for each 16 rather than one each, for 64 KiB of buffers per
// daemon.
const mmsgBatchSize = 16

// mmsgBatch holds the buffers of one recvmmsg(2) call: a datagram buffer
// (MaxNotifySize+1 bytes, so that an oversized one shows) and room for
// SCM_CREDENTIALS and one descriptor (a BARRIER=1's; the kernel closes any
// more) per message. golang.org/x/sys/unix has the Mmsghdr type
// but no Recvmmsg, hence the raw system call.
type mmsgBatch struct {
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	bufs [][]byte
	oobs [][]byte
	// calls counts the recvmmsg calls made (tests check the batching).
	calls int
}

func newMmsgBatch(n int) *mmsgBatch {
	b := &mmsgBatch{hdrs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n), oobs: make([][]byte, n)}
	size, oobSize := proto.MaxNotifySize+1, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4)
	slab, oobSlab := make([]byte, n*size), make([]byte, n*oobSize)
	for i := range n {
		b.bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
		b.oobs[i] = oobSlab[i*oobSize : (i+1)*oobSize : (i+1)*oobSize]
	}
	return b
}

// recv reads up to max (≤ the batch's size) datagrams from fd without
// blocking and returns how many; unix.EAGAIN when there is none.
func (b *mmsgBatch) recv(fd, max int) (int, error) {
	max = min(max, len(b.hdrs))
	if max <= 0 {
		return 0, nil
	}
	for i := range max {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(len(b.bufs[i]))
		h := &b.hdrs[i]
		*h = unix.Mmsghdr{}
		h.Hdr.Iov = &b.iovs[i]
		h.Hdr.SetIovlen(1)
		h.Hdr.Control = &b.oobs[i][0]
		h.Hdr.SetControllen(len(b.oobs[i]))
	}
	b.calls++
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(max),
		unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC, 0, 0)
	runtime.KeepAlive(b)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// note turns the i-th datagram of the last recv into a note.
func (b *mmsgBatch) note(i int) note {
	h := &b.hdrs[i]
	nt, fds := parseDatagram(b.bufs[i][:min(int(h.Len), len(b.bufs[i]))], b.oobs[i][:min(int(h.Hdr.Controllen), len(b.oobs[i]))], int(h.Hdr.Flags))
	adoptFDs(&nt, fds)
	return nt
}
