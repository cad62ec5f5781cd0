//go:build !(unix && !aix) && !windows

package sqlite

import (
	"errors"
	"os"
)

// errWouldBlock is never returned here.
var errWouldBlock = errors.New("locked")

// lockExclusive does nothing where x/sys offers no file lock (js, wasip1,
// plan9, aix). The SQLite driver does not build there today; this keeps
// the package compiling should it ever do.
func lockExclusive(*os.File) error { return nil }
