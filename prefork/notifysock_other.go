//go:build unix && !linux

package prefork

// notifySocket is the master's end of NOTIFY_SOCKET for one daemon: here a
// socket for each worker (see workerSockets), as no SO_PASSCRED names the
// sender of a datagram.
type notifySocket = workerSockets

var _ noteSource = (*notifySocket)(nil)

// listenNotify prepares the notify sockets at path.N for workers running as
// uid and gid (-1: the master's).
func listenNotify(path string, uid, gid int) (*notifySocket, error) {
	return listenWorkerSockets(path, uid, gid)
}

// maxQueued bounds the notes read and not taken yet.
const maxQueued = 1024
