package prefork

// endpoint returns the NOTIFY_SOCKET of a worker about to start, and what
// to call with its pid once it has (0: it did not). On Linux every worker
// of a daemon shares the socket: SO_PASSCRED names the sender.
func (s *notifySocket) endpoint() (string, func(pid int)) { return s.path, func(int) {} }

// release forgets a worker that was reaped; nothing to do with one socket.
func (s *notifySocket) release(int) {}
