//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// connAlive peeks at an idle connection without blocking: EOF, an error
// or unexpected bytes mean the server closed it (or broke the protocol).
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	err = rc.Control(func(fd uintptr) {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(rerr, syscall.EAGAIN)
	})
	return err == nil && alive
}
