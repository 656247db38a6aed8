package prefork

import "golang.org/x/sys/unix"

// Holding a stream back for a paced writer (see pump): the pipe leaves the
// epoll instance until the writer's hold ends.

// hold takes stream i of w out of the epoll instance until c is closed. The
// first stream held on c starts a goroutine that waits for that and then
// hands c back to the loop.
func (p *pump) hold(w *watch, i int, c <-chan struct{}) {
	// Deleted, not modified to wait for no event: epoll reports a hang-up
	// whatever the events asked for, and a pipe whose writers are gone would
	// wake the loop without end.
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, w.fds[i], nil); err != nil {
		return // cannot happen; read on, unpaced
	}
	w.held[i] = true
	if _, ok := p.held[c]; !ok {
		go func() {
			select {
			case <-c:
				p.post(pumpOp{resume: c})
			case <-p.done:
			}
		}()
	}
	p.held[c] = append(p.held[c], heldStream{w, i})
}

// resume puts the streams held on c back into the epoll instance, those
// that are still open; one that cannot be is closed, as at EOF.
func (p *pump) resume(c <-chan struct{}) {
	for _, h := range p.held[c] {
		w, i := h.w, h.i
		if !w.held[i] {
			continue
		}
		w.held[i] = false
		if w.fds[i] < 0 {
			continue
		}
		if err := epollAdd(p.epfd, w.fds[i], w.id<<2|uint64(i)); err != nil {
			p.closeStream(w, i)
		}
	}
	delete(p.held, c)
}
