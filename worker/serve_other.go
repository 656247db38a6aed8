//go:build !unix

package worker

import "net"

// nbListener is not available here: Serve accepts the plain way.
type nbListener struct{}

func newNBListener(l net.Listener) *nbListener { return nil }

func (nl *nbListener) Close() error { return nil }

func (nl *nbListener) waitPending() error { return nil }

func (nl *nbListener) acceptNow() (net.Conn, error) { return nil, net.ErrClosed }

func (nl *nbListener) pending() bool { return false }
