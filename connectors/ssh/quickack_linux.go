package ssh

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAck makes c acknowledge what it receives at once, rather than after
// Linux's delayed-ACK timer (40 ms). OpenSSH's sshd leaves Nagle's
// algorithm on for sessions without a terminal, so it holds each small
// packet while the one before is unacknowledged. After authentication it
// writes the host-keys notice, its debug messages and then the answer to
// the client's first channel open one after another, and that answer
// waited for the client's delayed ACKs: 40 ms on every connection's first
// command, a third of a one-host run. After each read that returns data,
// TCP_QUICKACK sends the pending ACK now (one setsockopt per read).
func quickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{TCPConn: tc, rc: rc}
}

type quickAckConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		c.rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
