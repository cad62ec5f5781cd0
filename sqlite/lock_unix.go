//go:build unix && !aix

package sqlite

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errWouldBlock is what lockExclusive returns when another descriptor
// holds the lock.
var errWouldBlock = unix.EWOULDBLOCK

// lockExclusive takes flock(LOCK_EX) on f without waiting. flock locks
// belong to the open file description, so a second Open of the same file
// fails even in the same process.
func lockExclusive(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) //nolint:gosec // a descriptor fits an int
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
