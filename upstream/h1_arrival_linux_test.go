//go:build linux

package upstream

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// canWaitArrival: arrived below can tell when bytes reached a socket.
const canWaitArrival = true

// arrived reports whether the client side c of a loopback connection has
// received n bytes in all (read or still queued) and, with fin, the
// server's FIN: TCP_INFO's bytes_received and state, so a test waits on
// the kernel's own record instead of guessing a delay. A closed c counts
// as arrived: nothing can be read from it any more.
func arrived(c net.Conn, n int64, fin bool) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	done := true
	cerr := rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		if int64(info.Bytes_received) < n {
			done = false
			return
		}
		switch info.State {
		case 1, 4, 5: // ESTABLISHED, FIN_WAIT1, FIN_WAIT2: no FIN received yet
			done = !fin
		}
	})
	return cerr != nil || done
}

// waitArrival polls arrived with a generous deadline and reports whether
// it came true.
func waitArrival(c net.Conn, n int64, fin bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !arrived(c, n, fin) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Microsecond)
	}
	return true
}
