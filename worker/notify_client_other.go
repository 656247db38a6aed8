//go:build !unix

package worker

import "net"

// notifyWriteNow sends msg on c.
func notifyWriteNow(c *net.UnixConn, msg []byte) error {
	_, err := c.Write(msg)
	return err
}
