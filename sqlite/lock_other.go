//go:build !(unix && !aix) && !windows

package sqlite

import (
	"errors"
	"os"
)

// errWouldBlock is never returned here.
var errWouldBlock = errors.New("locked")

// lockExclusive does nothing where Go offers no file lock (js, wasip1,
// plan9, aix): one process per database file is then the operator's to
// ensure (docs/operations.md).
func lockExclusive(*os.File) error { return nil }
