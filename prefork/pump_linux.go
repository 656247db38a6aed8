package prefork

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

// The pump waits for the output and the exit of every worker of every pool
// in the process, on one epoll instance, from one goroutine: a worker costs
// three file descriptors registered there and a little bookkeeping, not three
// parked goroutines with their stacks and buffers.
//
// For each worker it is given (a watch) it reads the worker's stdout and
// stderr pipes as they become readable, into one buffer shared by all, and
// writes what it read to the worker's output writers; at EOF it closes the
// pipe and the writer. When the worker's pidfd becomes readable (the worker
// has exited; the pump does not reap it), it first reads everything the
// worker left in its pipes, and only then calls the watch's exited func: the
// worker's last lines always come before its exit. A pipe that a child of the
// worker still holds open stays registered and is read until EOF.
//
// The pump never waits for anybody but the kernel: the writers and the exited
// funcs must not block (logging.LineWriter never does; a pool only queues the
// exit for its own goroutine), so a stalled log or a busy pool holds up
// nothing else. Registrations and drops reach the loop through a queue and an
// eventfd registered in the same epoll instance, which also wakes it to stop.
//
// A writer may ask the pump to stop reading for a while (a pacedWriter, such
// as logging.LineWriter while the central log's buffer is past its high-water
// mark): before each read of a stream the pump asks it, and if it is held
// takes the pipe out of the epoll instance and keeps it aside until the
// writer's channel is closed (a goroutine waits for that and wakes the loop),
// then puts it back. Meanwhile the pipe fills and the worker blocks in
// write(2), as with a slow disk: its lines wait rather than being dropped.
// Only pipes are ever held: pidfds and the eventfd stay registered, so exits
// are seen at once, and at a worker's exit the pump still reads what it left
// in its pipes before reporting it. How long a hold may last is the writer's
// business: logging lets go of it after its stall timeout when its target is
// stuck.
type pump struct {
	epfd int
	wake int // eventfd

	mu     sync.Mutex
	ops    []pumpOp // for the loop, in order
	closed bool     // close was called: no more ops
	done   chan struct{}

	// Owned by the loop goroutine.
	watches map[uint64]*watch
	nextID  uint64
	buf     []byte
	held    map[<-chan struct{}][]heldStream // streams kept out of epoll, by the channel that ends their hold
}

// pacedWriter is an output writer that can ask the pump to stop reading its
// stream for a while; logging.LineWriter is one.
type pacedWriter interface {
	// Hold returns nil if the writer takes more output now; otherwise a
	// channel that is closed once it does again. It must not block.
	Hold() <-chan struct{}
}

// heldStream is a stream the pump does not read until a hold ends.
type heldStream struct {
	w *watch
	i int // fdStdout or fdStderr
}

// watch is one worker as the pump sees it.
type watch struct {
	owner  any // whose worker it is, for drop
	pid    int
	fds    [3]int            // stdout and stderr read ends, pidfd; -1 once closed (pidfd: -1 if unavailable)
	out    [2]io.WriteCloser // where stdout and stderr go; nil discards
	exited func()            // called on the pump's goroutine once the worker has exited and its output is read
	id     uint64            // key in watches
	state  watchState
	paced  [2]pacedWriter // out[i] if it is one
	held   [2]bool        // fds[i] is out of the epoll instance until a hold ends
}

type watchState int

const (
	watchRunning watchState = iota
	watchExited             // exited was called
)

// Indexes into watch.fds.
const (
	fdStdout = 0
	fdStderr = 1
	fdPid    = 2
)

// streamNames are the names of watch.fds[0] and [1].
var streamNames = [2]string{"stdout", "stderr"}

// pumpOp is a request to the loop: exactly one field is set.
type pumpOp struct {
	add    *watch
	exited *watch          // the worker of a watch without a pidfd has exited
	drop   any             // close what is left of this owner's watches
	resume <-chan struct{} // this hold has ended: read its streams again
	export *[]*watch       // take the running watches out (adopt_linux.go)
	ack    chan struct{}
}

// wakeToken is the epoll data of the eventfd; watches' tokens are their id
// shifted left by 2 and the index into fds in the low bits, ids from 1.
const wakeToken = 0

// pumpBufSize is the shared read buffer: one read takes a full pipe (64 KiB
// by default) at most, so a chatty worker gets no more than that at a time
// before the others' turn.
const pumpBufSize = 64 << 10

// newPump opens an epoll instance and an eventfd and starts the loop.
func newPump() (*pump, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := epollAdd(epfd, wake, wakeToken); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, err
	}
	p := &pump{
		epfd:    epfd,
		wake:    wake,
		done:    make(chan struct{}),
		watches: make(map[uint64]*watch),
		buf:     make([]byte, pumpBufSize),
		held:    make(map[<-chan struct{}][]heldStream),
	}
	go p.run()
	return p, nil
}

// errPumpClosed is returned by add after close.
var errPumpClosed = errors.New("worker pump closed")

// add hands w to the loop, which registers its fds. From then on the pump
// owns them: it closes them, and w's writers, when it is done with them.
// After close, add closes nothing and returns errPumpClosed.
func (p *pump) add(w *watch) error {
	noPidfd := w.fds[fdPid] < 0 // read before the loop owns w
	if !p.post(pumpOp{add: w}) {
		return errPumpClosed
	}
	if noPidfd {
		go p.waitWithoutPidfd(w)
	}
	return nil
}

// waitWithoutPidfd is how the pump learns of the exit of a worker it has no
// pidfd for (a kernel before 5.3): a goroutine holds a thread in waitid until
// the worker has exited, without reaping it, as exec.Cmd.Wait would.
func (p *pump) waitWithoutPidfd(w *watch) {
	var info unix.Siginfo
	for unix.Waitid(unix.P_PID, w.pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
	}
	p.post(pumpOp{exited: w})
}

// drop closes what is left of owner's watches: it reads what is readable in
// their pipes and closes them and their writers, and closes the pidfds of
// workers still running, which will not be reported. It returns once that is
// done, or at once after close.
func (p *pump) drop(owner any) {
	ack := make(chan struct{})
	if p.post(pumpOp{drop: owner, ack: ack}) {
		<-ack
	}
}

// close stops the loop after it has closed what is left of every watch, and
// closes the epoll instance. It is idempotent.
func (p *pump) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.kick()
	}
	p.mu.Unlock()
	<-p.done
}

// post queues op for the loop and wakes it; false if the pump is closed.
func (p *pump) post(op pumpOp) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.ops = append(p.ops, op)
	p.kick()
	return true
}

// kick wakes the loop; p.mu must be held, so that no kick can come after the
// loop has seen closed and closed the eventfd. The eventfd does not block: a
// full counter is awake enough.
func (p *pump) kick() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.wake, one[:])
}

// run is the loop: it sleeps in epoll_wait until a pipe, a pidfd or the
// eventfd is readable.
func (p *pump) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			// Only a bug can make epoll_wait on a valid instance fail; the
			// runtime's own poller throws in this case too.
			panic(fmt.Errorf("prefork: worker pump: epoll_wait: %w", err))
		}
		woken := false
		for _, ev := range events[:n] {
			tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if tok == wakeToken {
				woken = true
				continue
			}
			w := p.watches[tok>>2]
			if w == nil {
				continue
			}
			switch i := int(tok & 3); i {
			case fdStdout, fdStderr:
				p.read(w, i)
			case fdPid:
				p.exit(w)
			}
		}
		// Ops after the events: a watch added now cannot be taken for the
		// owner of a stale event of this batch.
		if woken && p.handleOps() {
			return
		}
	}
}

// handleOps runs the queued ops and reports whether the pump is closing, in
// which case it has closed everything.
func (p *pump) handleOps() bool {
	var cnt [8]byte
	_, _ = unix.Read(p.wake, cnt[:])
	p.mu.Lock()
	ops, closed := p.ops, p.closed
	p.ops = nil
	p.mu.Unlock()
	for _, op := range ops {
		switch {
		case op.add != nil:
			p.register(op.add)
		case op.exited != nil:
			if p.watches[op.exited.id] == op.exited {
				p.exit(op.exited)
			}
		case op.drop != nil:
			for _, w := range p.watches {
				if w.owner == op.drop {
					p.finish(w)
				}
			}
		case op.resume != nil:
			p.resume(op.resume)
		case op.export != nil:
			*op.export = p.export()
		}
		if op.ack != nil {
			close(op.ack)
		}
	}
	if !closed {
		return false
	}
	for _, w := range p.watches {
		p.finish(w)
	}
	// Closed was set with the last kick, under p.mu: nobody writes to the
	// eventfd any more.
	unix.Close(p.wake)
	unix.Close(p.epfd)
	return true
}

// register adds w's fds to the epoll instance. A pipe that cannot be
// registered is closed (its writer too) as at EOF; a pidfd that cannot is
// waited for by a thread instead.
func (p *pump) register(w *watch) {
	p.nextID++
	w.id = p.nextID
	p.watches[w.id] = w
	for i, o := range w.out {
		w.paced[i], _ = o.(pacedWriter)
	}
	for i := range w.fds {
		fd := w.fds[i]
		if fd < 0 {
			continue
		}
		var err error
		if i != fdPid {
			// Never a blocking read in the loop. Not the pidfd: os.Process
			// holds a duplicate of it, which its Wait needs blocking.
			err = unix.SetNonblock(fd, true)
		}
		if err == nil {
			err = epollAdd(p.epfd, fd, w.id<<2|uint64(i))
		}
		if err == nil {
			continue
		}
		if i == fdPid {
			unix.Close(fd)
			w.fds[fdPid] = -1
			go p.waitWithoutPidfd(w)
			continue
		}
		p.closeStream(w, i)
	}
}

// read reads from stream i of w once: a chatty worker waits for its next
// turn, after the other ready fds of this batch (epoll is level-triggered).
// At EOF or on an error it closes the stream. If the stream's writer is held,
// it does not read but sets the stream aside.
func (p *pump) read(w *watch, i int) {
	if w.fds[i] < 0 || w.held[i] { // closed or held by an earlier event of the same batch
		return
	}
	if w.paced[i] != nil {
		if c := w.paced[i].Hold(); c != nil {
			p.hold(w, i, c)
			return
		}
	}
	n, err := unix.Read(w.fds[i], p.buf)
	switch {
	case n > 0:
		p.write(w, i, p.buf[:n])
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
	default: // EOF, or an error no later read will fix
		p.closeStream(w, i)
	}
}

// drain reads what is in stream i of w now, and then once more: a child of
// the worker that keeps writing cannot hold it up, and a pipe no child holds
// is seen at EOF and closed, which writes a last line without a newline.
func (p *pump) drain(w *watch, i int) {
	if w.fds[i] < 0 {
		return
	}
	avail, err := unix.IoctlGetInt(w.fds[i], unix.TIOCINQ) // FIONREAD: bytes in the pipe
	if err != nil {
		avail = 0
	}
	for last := false; !last; {
		size := avail
		if size <= 0 { // what was there is read: EOF, or a child still holds the pipe
			size, last = len(p.buf), true
		}
		n, err := unix.Read(w.fds[i], p.buf[:min(size, len(p.buf))])
		switch {
		case n > 0:
			p.write(w, i, p.buf[:n])
			avail -= n
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			return
		default: // EOF, or an error no later read will fix
			p.closeStream(w, i)
			return
		}
	}
}

// write hands output of stream i of w to its writer.
func (p *pump) write(w *watch, i int, b []byte) {
	if w.out[i] != nil {
		_, _ = w.out[i].Write(b)
	}
}

// exit reports w's worker as exited, once what it wrote is read.
func (p *pump) exit(w *watch) {
	p.drain(w, fdStdout)
	p.drain(w, fdStderr)
	p.closeFD(w, fdPid)
	if w.state == watchRunning {
		w.state = watchExited
		w.exited()
	}
	p.forgetIfDone(w)
}

// finish closes what is left of w without reporting its exit: it reads what
// is in its pipes now and closes them.
func (p *pump) finish(w *watch) {
	p.drain(w, fdStdout)
	p.drain(w, fdStderr)
	p.closeStream(w, fdStdout)
	p.closeStream(w, fdStderr)
	p.closeFD(w, fdPid)
	w.state = watchExited
	p.forgetIfDone(w)
}

// closeStream closes stream i of w and its writer.
func (p *pump) closeStream(w *watch, i int) {
	if w.fds[i] < 0 {
		return
	}
	p.closeFD(w, i)
	if w.out[i] != nil {
		_ = w.out[i].Close()
		w.out[i] = nil
	}
	p.forgetIfDone(w)
}

// closeFD unregisters and closes fd i of w.
func (p *pump) closeFD(w *watch, i int) {
	fd := w.fds[i]
	if fd < 0 {
		return
	}
	if i == fdPid || !w.held[i] {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	unix.Close(fd)
	w.fds[i] = -1
}

// forgetIfDone drops w once its exit is reported and its pipes are closed.
func (p *pump) forgetIfDone(w *watch) {
	if w.state != watchRunning && w.fds == [3]int{-1, -1, -1} {
		delete(p.watches, w.id)
	}
}

// close closes w's fds and writers, for a watch no pump took.
func (w *watch) close() {
	for i, fd := range w.fds {
		if fd >= 0 {
			unix.Close(fd)
			w.fds[i] = -1
		}
	}
	for i, o := range w.out {
		if o != nil {
			_ = o.Close()
			w.out[i] = nil
		}
	}
}

// epollAdd registers fd for reading, with tok as its data.
func epollAdd(epfd, fd int, tok uint64) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	return nil
}
