package vpcd

import (
	"net"

	"golang.org/x/sys/unix"
)

// quickAck returns a function that re-arms TCP_QUICKACK on c. Linux clears the
// flag by itself after a while, so it must be set again after every read
// (man 7 tcp; vsmartcard PR #252): then vpcd's split length/body writes are ACKed
// at once instead of waiting ~40 ms for our delayed ACK while its Nagle holds
// the body back.
func quickAck(c *net.TCPConn) func() {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return func() {
		_ = raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
}
