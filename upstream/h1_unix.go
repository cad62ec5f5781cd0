//go:build unix

package upstream

import (
	"errors"
	"syscall"
)

// connAlive peeks at an idle connection without blocking: EOF, an error
// or unexpected bytes mean the server closed it (or broke the protocol).
// A nil rc (no raw access) counts as alive.
func connAlive(rc syscall.RawConn) bool {
	if rc == nil {
		return true
	}
	alive := false
	var buf [1]byte
	err := rc.Control(func(fd uintptr) {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(rerr, syscall.EAGAIN)
	})
	return err == nil && alive
}
