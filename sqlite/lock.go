package sqlite

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrLocked is wrapped by the error of Open when another Store, in this
// process or another, has the database open.
var ErrLocked = errors.New("the database is in use by another fanout process")

// fileLock is the exclusive lock a Store holds on its database for as long
// as it is open: the file path+".lock" next to the database, locked with
// the operating system's advisory file lock (flock on Unix, LockFileEx on
// Windows). The operating system releases it when the process ends, however
// it ends, so a process that restarts after kill -9 takes it at once.
//
// A sidecar file rather than the database itself: SQLite holds POSIX
// locks on the database, and a process that closes any other descriptor
// of that file loses them.
type fileLock struct {
	f *os.File
}

// lockFile takes the lock of the database at path, or fails at once with
// an error that wraps ErrLocked and names the lock file when another open
// descriptor holds it. The lock file keeps the holder's pid, for that
// message.
func lockFile(path string) (*fileLock, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := lockExclusive(f); err != nil {
		_ = f.Close() // the error to report is the lock's
		if errors.Is(err, errWouldBlock) {
			holder := ""
			if b, rerr := os.ReadFile(name); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = fmt.Sprintf("pid %d, ", pid)
				}
			}
			return nil, fmt.Errorf("%w (%slock file %s): one process per database file", ErrLocked, holder, name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// The pid is for the message above only: a failure to write it is not
	// worth failing the Open for.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// release unlocks the database. The lock file stays (removing it would
// race with a process that has just opened it).
func (l *fileLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close() // closing the descriptor releases the lock
}
